// The plan model's values: an action's template is shared between copies of the action but
// compared, read and replaced as a value.

#include "reconciler/model/plan.h"

#include <gtest/gtest.h>

namespace flotilla {
namespace {

VMTemplate Linux(const std::string& image) {
  return VMTemplate{.image = image, .os = GuestOs::kLinux, .cpu = 2};
}

TEST(SharedTemplateTest, ComparesByValueAndReadsLikeAnOptional) {
  const SharedTemplate none;
  EXPECT_FALSE(none);
  EXPECT_FALSE(none.has_value());
  EXPECT_EQ(none, SharedTemplate());

  const SharedTemplate a = Linux("catalog://UBUNTU/24.04");
  const SharedTemplate b = Linux("catalog://UBUNTU/24.04");  // another copy, equal
  ASSERT_TRUE(a);
  EXPECT_EQ(a->image, "catalog://UBUNTU/24.04");
  EXPECT_EQ((*a).cpu, 2u);
  EXPECT_NE(&*a, &*b);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, none);
  EXPECT_NE(none, a);
  EXPECT_NE(a, SharedTemplate(Linux("catalog://UBUNTU/22.04")));
}

TEST(SharedTemplateTest, CopiesShareOneTemplateAndAssigningReplacesIt) {
  VMTemplate templ = Linux("catalog://UBUNTU/24.04");
  Action create{.kind = ActionKind::kCreate, .vm = "lin-0", .templ = templ};
  Action copy = create;
  EXPECT_EQ(&*copy.templ, &*create.templ);  // shared, not copied
  EXPECT_EQ(copy, create);

  templ.cpu = 4;  // the action holds its own value, not a view of the source
  EXPECT_EQ(create.templ->cpu, 2u);

  copy.templ = templ;  // replacing one action's template leaves the other's alone
  EXPECT_EQ(copy.templ->cpu, 4u);
  EXPECT_EQ(create.templ->cpu, 2u);
  EXPECT_NE(copy, create);
  copy.templ = SharedTemplate();
  EXPECT_FALSE(copy.templ);
}

}  // namespace
}  // namespace flotilla
