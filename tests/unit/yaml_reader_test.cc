#include "reconciler/manifest/yaml_reader.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace flotilla::manifest {
namespace {

std::vector<YamlDocument> Read(const std::string& text, Diagnostics& d, size_t max = 100) {
  DocumentBudget budget{.limit = max};
  return ReadYamlDocuments(text, "f.yaml", budget, d);
}

nlohmann::json One(const std::string& text) {
  Diagnostics d;
  auto docs = Read(text, d);
  EXPECT_FALSE(d.HasErrors()) << d.Sorted().front().ToString();
  EXPECT_EQ(docs.size(), 1u);
  return docs.empty() ? nlohmann::json() : docs[0].value;
}

TEST(YamlReaderTest, TypesScalarsByYaml12CoreSchema) {
  nlohmann::json v =
      One("a: 12\nb: -3\nc: 0x1F\nd: 0o17\ne: 1.5\nf: true\ng: False\nh: ~\ni: null\nj:\n"
          "k: yes\nl: on\nm: '12'\nn: \"true\"\no: 8Gi\np: 1e3\nq: .inf\nr: 012\n");
  EXPECT_EQ(v["a"], 12);
  EXPECT_EQ(v["b"], -3);
  EXPECT_EQ(v["c"], 31);
  EXPECT_EQ(v["d"], 15);
  EXPECT_EQ(v["e"], 1.5);
  EXPECT_EQ(v["f"], true);
  EXPECT_EQ(v["g"], false);
  EXPECT_TRUE(v["h"].is_null());
  EXPECT_TRUE(v["i"].is_null());
  EXPECT_TRUE(v["j"].is_null());
  EXPECT_EQ(v["k"], "yes");  // YAML 1.1 booleans stay strings
  EXPECT_EQ(v["l"], "on");
  EXPECT_EQ(v["m"], "12");  // quoted: always a string
  EXPECT_EQ(v["n"], "true");
  EXPECT_EQ(v["o"], "8Gi");
  EXPECT_EQ(v["p"], 1000.0);
  EXPECT_TRUE(std::isinf(v["q"].get<double>()));
  EXPECT_EQ(v["r"], 12);  // 1.2: leading zero is decimal
}

TEST(YamlReaderTest, IntegersBeyondSixtyFourBitsAreRejected) {
  EXPECT_EQ(One("b: 18446744073709551615\nc: -9223372036854775808\n")["b"].get<uint64_t>(),
            UINT64_MAX);
  for (const char* text : {"a: 99999999999999999999999\n", "a: 18446744073709551616\n",
                           "a: -9223372036854775809\n", "a: 0xfffffffffffffffff\n"}) {
    Diagnostics d;
    EXPECT_TRUE(Read(text, d).empty()) << text;
    ASSERT_TRUE(d.HasErrors()) << text;
    EXPECT_NE(d.Sorted()[0].message.find("does not fit in 64 bits"), std::string::npos);
  }
}

TEST(YamlReaderTest, TagsOnCollectionsAreRefused) {
  for (const char* text :
       {"metadata: !!python/object:os.system {name: p}\n", "tags: !custom [a]\n"}) {
    Diagnostics d;
    EXPECT_TRUE(Read(text, d).empty()) << text;
    ASSERT_TRUE(d.HasErrors());
    EXPECT_NE(d.Sorted()[0].message.find("unsupported YAML tag"), std::string::npos);
  }
  EXPECT_EQ(One("a: !!map {b: 1}\nc: !!seq [1]\n")["c"][0], 1);
}

TEST(YamlReaderTest, EmptyValuesSitAtTheirKey) {
  Diagnostics d;
  auto docs = Read("a:\n  b:\n  c: 1\nd:\n", d);
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0].ValueLocation("/a/b").ToString(), "f.yaml:2:3");
  EXPECT_EQ(docs[0].ValueLocation("/d").ToString(), "f.yaml:4:1");
}

TEST(YamlReaderTest, RecordsKeyAndValuePositions) {
  Diagnostics d;
  auto docs = Read("# comment\nspec:\n  hosts:\n    - name: a\n      address: x\n", d);
  ASSERT_EQ(docs.size(), 1u);
  const YamlDocument& doc = docs[0];
  EXPECT_EQ(doc.KeyLocation("/spec/hosts").ToString(), "f.yaml:3:3");
  EXPECT_EQ(doc.ValueLocation("/spec/hosts/0/address").ToString(), "f.yaml:5:16");
  EXPECT_EQ(doc.KeyLocation("/spec/hosts/0/address").ToString(), "f.yaml:5:7");
  // A pointer to nothing falls back to its nearest ancestor.
  EXPECT_EQ(doc.KeyLocation("/spec/hosts/0/missing").ToString(), "f.yaml:4:7");
}

TEST(YamlReaderTest, FindsPositionsInLongListsAndMappingsOutOfOrder) {
  // Keys not in order, a list of twelve items ("10" sorts before "2") and a mapping of 40 keys
  // (written in reverse): every node is found where it is written.
  std::string text = "zeta: 1\nalpha:\n";
  for (int i = 0; i < 12; ++i) {
    text += "  - {name: n" + std::to_string(i) + "}\n";
  }
  text += "many:\n";
  for (int i = 39; i >= 0; --i) {
    text += "  k" + std::to_string(i) + ": " + std::to_string(i) + "\n";
  }
  Diagnostics d;
  std::vector<YamlDocument> docs = Read(text, d);
  ASSERT_EQ(docs.size(), 1u);
  const YamlDocument& doc = docs[0];
  EXPECT_EQ(doc.KeyLocation("/zeta").ToString(), "f.yaml:1:1");
  EXPECT_EQ(doc.ValueLocation("/zeta").ToString(), "f.yaml:1:7");
  EXPECT_EQ(doc.KeyLocation("/alpha").ToString(), "f.yaml:2:1");
  for (int i = 0; i < 12; ++i) {
    const std::string item = "/alpha/" + std::to_string(i);
    EXPECT_EQ(doc.ValueLocation(item).ToString(), "f.yaml:" + std::to_string(3 + i) + ":5");
    EXPECT_EQ(doc.KeyLocation(item + "/name").ToString(), "f.yaml:" + std::to_string(3 + i) + ":6");
  }
  EXPECT_EQ(doc.ValueLocation("/alpha/12").ToString(), "f.yaml:3:3");  // no item: the list
  for (int i = 0; i < 40; ++i) {
    const std::string line = std::to_string(16 + (39 - i));
    EXPECT_EQ(doc.KeyLocation("/many/k" + std::to_string(i)).ToString(), "f.yaml:" + line + ":3");
  }
  EXPECT_EQ(doc.KeyLocation("/many/k40").ToString(), "f.yaml:15:1");  // no key: the mapping's
  EXPECT_EQ(doc.KeyLocation("/many/k4/deeper").ToString(), "f.yaml:51:3");
}

TEST(YamlReaderTest, ReadsEveryDocumentAndSkipsEmptyOnes) {
  Diagnostics d;
  auto docs = Read("a: 1\n---\n---\n# only a comment\n---\nb: 2\n", d);
  EXPECT_FALSE(d.HasErrors());
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0].value["a"], 1);
  EXPECT_EQ(docs[1].value["b"], 2);
  EXPECT_EQ(docs[1].ValueLocation("/b").line, 6);
}

TEST(YamlReaderTest, RejectsAliasesAndAnchors) {
  // The classic billion-laughs shape: must be refused, never expanded.
  const std::string laughs =
      "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
      "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
      "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
      "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
      "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
      "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
      "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n";
  Diagnostics d;
  auto docs = Read(laughs, d);
  EXPECT_TRUE(docs.empty());
  ASSERT_TRUE(d.HasErrors());
  const auto all = d.Sorted();
  EXPECT_EQ(all.front().ToString(),
            "f.yaml:1:4: error: YAML anchors (&a) are not allowed in manifests; write the value "
            "out");
  bool alias_reported = false;
  for (const Diagnostic& diag : all) {
    alias_reported |= diag.message.find("aliases (*name) are not allowed") != std::string::npos;
  }
  EXPECT_TRUE(alias_reported);
}

TEST(YamlReaderTest, RejectsDuplicateKeys) {
  Diagnostics d;
  auto docs = Read("a: 1\nb: 2\na: 3\n", d);
  EXPECT_TRUE(docs.empty());
  ASSERT_EQ(d.Sorted().size(), 1u);
  EXPECT_EQ(d.Sorted()[0].ToString(), "f.yaml:3:1: error: duplicate key \"a\"");
}

TEST(YamlReaderTest, RejectsComplexAndNullKeys) {
  Diagnostics d;
  EXPECT_TRUE(Read("? [a, b]\n: 1\n", d).empty());
  EXPECT_TRUE(d.HasErrors());
  Diagnostics d2;
  EXPECT_TRUE(Read("~: 1\n", d2).empty());
  EXPECT_TRUE(d2.HasErrors());
}

TEST(YamlReaderTest, SyntaxErrorKeepsEarlierDocumentsAndLocatesTheError) {
  Diagnostics d;
  auto docs = Read("a: 1\n---\nb: [1, 2\nc: 3\n", d);
  ASSERT_EQ(docs.size(), 1u);
  ASSERT_EQ(d.Sorted().size(), 1u);
  const Diagnostic e = d.Sorted()[0];
  EXPECT_EQ(e.location.file, "f.yaml");
  EXPECT_GE(e.location.line, 3);
  EXPECT_NE(e.message.find("YAML syntax error"), std::string::npos);
}

TEST(YamlReaderTest, TabIndentationIsASyntaxError) {
  Diagnostics d;
  Read("a:\n\tb: 1\n", d);
  EXPECT_TRUE(d.HasErrors());
}

TEST(YamlReaderTest, DeepNestingIsAnErrorNotACrash) {
  Diagnostics d;
  Read(std::string(100000, '[') + std::string(100000, ']'), d);
  ASSERT_TRUE(d.HasErrors());
  EXPECT_NE(d.Sorted()[0].message.find("levels deep"), std::string::npos)
      << d.Sorted()[0].ToString();
}

TEST(YamlReaderTest, StopsAfterMaxDocuments) {
  std::string text;
  for (int i = 0; i < 5; ++i) {
    text += "---\na: " + std::to_string(i) + "\n";
  }
  Diagnostics d;
  auto docs = Read(text, d, 3);
  EXPECT_EQ(docs.size(), 3u);
  ASSERT_TRUE(d.HasErrors());
  EXPECT_NE(d.Sorted()[0].message.find("too many documents: at most 3"), std::string::npos);
}

TEST(YamlReaderTest, CoreTagsAreCheckedOtherTagsRefused) {
  EXPECT_EQ(One("a: !!str 12\n")["a"], "12");
  EXPECT_EQ(One("a: !!int 12\n")["a"], 12);
  Diagnostics d;
  EXPECT_TRUE(Read("a: !!int twelve\n", d).empty());
  Diagnostics d2;
  EXPECT_TRUE(Read("a: !custom x\n", d2).empty());
  EXPECT_TRUE(d2.HasErrors());
}

TEST(YamlReaderTest, PointerTokensAreEscaped) {
  EXPECT_EQ(EscapePointerToken("a/b~c"), "a~1b~0c");
  Diagnostics d;
  auto docs = Read("labels:\n  example.com/team: x\n", d);
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0].ValueLocation("/labels/example.com~1team").column, 21);
}

// Found by fuzz/config_fuzz.cc and fuzz/fleet_fuzz.cc (fuzz/corpus/config/invalid-utf8-key.yaml): a
// mapping key that is not UTF-8 made the conversion to JSON throw, so the file was reported
// without a line ("cannot read YAML: [json.exception.type_error.316] ...") and the rest of it
// was not read.
TEST(YamlReaderTest, TextThatIsNotUtf8IsRejectedWhereItIs) {
  Diagnostics d;
  EXPECT_TRUE(Read("a: 1\nb\x9d: x\nc: \xff\xfe\nd: \xed\xa0\x80\n", d).empty());
  const std::vector<Diagnostic> sorted = d.Sorted();
  ASSERT_EQ(sorted.size(), 3u) << sorted[0].ToString();
  EXPECT_EQ(sorted[0].location.line, 2);
  EXPECT_EQ(sorted[1].location.line, 3);
  EXPECT_EQ(sorted[2].location.line, 4);  // an encoded surrogate
  EXPECT_NE(sorted[0].message.find("not valid UTF-8"), std::string::npos) << sorted[0].message;
  // Well-formed text of every length is kept as it is.
  EXPECT_EQ(One("a: caf\u00e9 \u20ac \U0001F600\n")["a"], "caf\u00e9 \u20ac \U0001F600");
}

// Found by fuzz/yaml_reader_fuzz.cc (fuzz/corpus/yaml_reader/nested-complex-keys.yaml): the
// positions inside every rejected complex key shared one node, so a complex key nested in
// another replaced, and freed, the node of a collection still open (heap-use-after-free).
TEST(YamlReaderTest, NestedComplexKeysAreRejected) {
  for (const char* text : {"? [? [a]]\n: d\n", "? [{? [a] : b}, c]\n: d\n", "? [? [a]\ntom\n"}) {
    Diagnostics d;
    EXPECT_TRUE(Read(text, d).empty()) << text;
    ASSERT_TRUE(d.HasErrors()) << text;
    EXPECT_EQ(d.Sorted()[0].location.line, 1) << text;
  }
}

}  // namespace
}  // namespace flotilla::manifest
