#pragma once

// EXPECT_OK(expr) and ASSERT_OK(expr): `expr`, a Status or a Result<T>, is OK. A failure prints
// the expression and the Status text (not just "false"); more can be streamed in with <<.

#include <gtest/gtest.h>

#include "reconciler/model/result.h"
#include "reconciler/model/status.h"

namespace flotilla::testing {

inline const Status& StatusOf(const Status& status) { return status; }
template <typename T>
const Status& StatusOf(const Result<T>& result) {
  return result.status();
}

template <typename T>
::testing::AssertionResult IsOk(const char* expression, const T& value) {
  const Status& status = StatusOf(value);
  if (status.ok()) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << expression << " is not OK: " << status.ToString();
}

}  // namespace flotilla::testing

#define EXPECT_OK(expr) EXPECT_PRED_FORMAT1(::flotilla::testing::IsOk, expr)
#define ASSERT_OK(expr) ASSERT_PRED_FORMAT1(::flotilla::testing::IsOk, expr)
