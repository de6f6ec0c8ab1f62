// The PNGs kept for response_format "url": served by id until their time to live runs out.
#include "core/image_file_store.h"

#include <gtest/gtest.h>

namespace allm {
namespace {

TEST(ImageFileStore, ServesAFileByItsIdUntilItExpires) {
  ImageFileStore store(600);
  const std::string a = store.put("png-a"), b = store.put("png-b");
  EXPECT_EQ(a.rfind("img_", 0), 0u) << a;
  EXPECT_EQ(a.size(), 28u) << a;
  EXPECT_NE(a, b);
  EXPECT_EQ(store.find(a), "png-a");
  EXPECT_EQ(store.find(b), "png-b");
  EXPECT_FALSE(store.find("img_000000000000000000000000"));

  ImageFileStore expired(0);  // a time to live of 0: gone at once
  EXPECT_FALSE(expired.find(expired.put("png")));
}

}  // namespace
}  // namespace allm
