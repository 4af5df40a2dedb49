#include "reconciler/model/status.h"

#include <gtest/gtest.h>

#include <string>

#include "reconciler/model/result.h"

namespace flotilla {
namespace {

TEST(StatusTest, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "OK");
  EXPECT_FALSE(s.IsRetryable());
}

TEST(StatusTest, NamedConstructorsCarryCodeAndMessage) {
  Status s = Status::NotFound("vm ios-runners-3");
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.IsNotFound());
  EXPECT_EQ(s.code(), Status::Code::kNotFound);
  EXPECT_EQ(s.message(), "vm ios-runners-3");
  EXPECT_EQ(s.ToString(), "NotFound: vm ios-runners-3");
}

TEST(StatusTest, RetryableOnlyForTransientCodes) {
  EXPECT_TRUE(Status::Unavailable("connection refused").IsRetryable());
  EXPECT_TRUE(Status::DeadlineExceeded("timeout").IsRetryable());
  EXPECT_TRUE(Status::ResourceExhausted("429").IsRetryable());
  EXPECT_FALSE(Status::InvalidArgument("bad").IsRetryable());
  EXPECT_FALSE(Status::PermissionDenied("401").IsRetryable());
  EXPECT_FALSE(Status::NotFound("x").IsRetryable());
  EXPECT_FALSE(Status::Conflict("x").IsRetryable());
  EXPECT_FALSE(Status::FailedPrecondition("x").IsRetryable());
  EXPECT_FALSE(Status::Internal("x").IsRetryable());
  EXPECT_FALSE(Status::AlreadyExists("x").IsRetryable());
}

TEST(StatusTest, WithContextPrefixesMessageAndKeepsCode) {
  Status s = Status::Unavailable("connection refused").WithContext("observe mini-01");
  EXPECT_TRUE(s.IsUnavailable());
  EXPECT_EQ(s.message(), "observe mini-01: connection refused");
  EXPECT_TRUE(Status::Ok().WithContext("x").ok());
}

TEST(ResultTest, HoldsValueOrStatus) {
  Result<std::string> good(std::string("hello"));
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, "hello");
  EXPECT_EQ(good->size(), 5u);

  Result<std::string> bad(Status::InvalidArgument("nope"));
  EXPECT_FALSE(bad.ok());
  EXPECT_TRUE(bad.status().IsInvalidArgument());
}

}  // namespace
}  // namespace flotilla
