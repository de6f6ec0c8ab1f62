// The conversation service over an in-memory response store: a response continues the stored
// conversation of its previous_response_id, and a saved one is stored with its output so that
// the next can continue it.
#include "core/conversation_service.h"

#include <gtest/gtest.h>

#include "core/response_store.h"

namespace allm {
namespace {

ConversationItem message(const std::string& role, const std::string& content) {
  return {ConversationItem::Type::MESSAGE, role, content};
}

std::vector<std::string> lines(const Conversation& conversation) {
  std::vector<std::string> out;
  for (const ConversationItem& item : conversation) out.push_back(item.role + ": " + item.content);
  return out;
}

class ConversationServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Error error;
    store_ = ResponseStore::open(":memory:", &error);
    ASSERT_TRUE(store_) << error.message;
    service_ = std::make_unique<ConversationService>(*store_);
  }

  std::unique_ptr<ResponseStore> store_;
  std::unique_ptr<ConversationService> service_;
};

TEST_F(ConversationServiceTest, WithoutAPreviousResponseTheHistoryIsEmpty) {
  Conversation conversation = {message("user", "left over")};
  EXPECT_FALSE(service_->history(std::nullopt, &conversation));
  EXPECT_TRUE(conversation.empty());
}

TEST_F(ConversationServiceTest, ASavedResponseIsContinuedWithItsOutput) {
  Conversation first;
  ASSERT_FALSE(service_->history(std::nullopt, &first));
  ConversationService::append_input(&first, {message("system", "be brief"), message("user", "hi")});
  ASSERT_FALSE(
      service_->save({"resp_1", R"({"id":"resp_1"})", first, {message("assistant", "hello")}}));

  Conversation second;
  ASSERT_FALSE(service_->history("resp_1", &second));
  EXPECT_EQ(lines(second),
            (std::vector<std::string>{"system: be brief", "user: hi", "assistant: hello"}));
  ConversationService::append_input(&second, {message("user", "again")});
  ASSERT_FALSE(service_->save({"resp_2", "{}", second, {message("assistant", "hello again")}}));

  Conversation third;
  ASSERT_FALSE(service_->history("resp_2", &third));
  EXPECT_EQ(lines(third),
            (std::vector<std::string>{"system: be brief", "user: hi", "assistant: hello",
                                      "user: again", "assistant: hello again"}));
  // The first response's conversation is still its own.
  ASSERT_FALSE(service_->history("resp_1", &third));
  EXPECT_EQ(third.size(), 3u);
}

TEST_F(ConversationServiceTest, AnUnknownPreviousResponseIsNotFoundOnItsParam) {
  Conversation conversation;
  const Error error = service_->history(std::string(200, 'x'), &conversation);
  EXPECT_EQ(error.request_code, "not_found");
  EXPECT_EQ(error.param, "previous_response_id");
  EXPECT_LT(error.message.size(), 120u) << "the id is quoted as an excerpt: " << error.message;
}

TEST_F(ConversationServiceTest, ADamagedStoredConversationIsAnInternalError) {
  ASSERT_FALSE(store_->put({"resp_bad", "{}", R"([{"role":"user"}])"}));
  Conversation conversation;
  const Error error = service_->history("resp_bad", &conversation);
  EXPECT_EQ(error.code, ErrorCode::INTERNAL);
  EXPECT_NE(error.message.find("resp_bad"), std::string::npos) << error.message;
}

TEST_F(ConversationServiceTest, FindAndRemoveAnswerTheStoredObject) {
  ASSERT_FALSE(service_->save({"resp_1", R"({"id":"resp_1"})", {message("user", "hi")}, {}}));
  std::string object;
  ASSERT_FALSE(service_->find("resp_1", &object));
  EXPECT_EQ(object, R"({"id":"resp_1"})");
  EXPECT_FALSE(service_->remove("resp_1"));
  for (const Error& error : {service_->find("resp_1", &object), service_->remove("resp_1")}) {
    EXPECT_EQ(error.request_code, "not_found");
    EXPECT_EQ(error.param, "response_id");
  }
}

// The stored form is the one earlier versions wrote, so that their databases still continue.
TEST(ConversationJson, KeepsTheStoredForm) {
  const Conversation conversation = {message("user", "hi \"there\""), message("assistant", "yo")};
  const std::string text = conversation_to_json(conversation);
  EXPECT_EQ(text,
            R"([{"role":"user","content":"hi \"there\""},{"role":"assistant","content":"yo"}])");
  Conversation back;
  size_t output_items = 0;
  ASSERT_TRUE(conversation_from_json(text, "resp_old", &back, &output_items));
  EXPECT_EQ(lines(back), lines(conversation));
  // Items of such a record are named after it and their place; the last is the output.
  EXPECT_EQ(back[0].id, "msg_resp_old_0");
  EXPECT_EQ(back[1].id, "msg_resp_old_1");
  EXPECT_EQ(output_items, 1u);
  for (const char* damaged : {"", "{", "[1]", R"({"role":"user","content":"x"})"}) {
    Conversation out;
    EXPECT_FALSE(conversation_from_json(damaged, "resp_x", &out)) << damaged;
  }
}

TEST(ConversationJson, KeepsIdsAndMarksTheOutput) {
  Conversation conversation = {message("user", "hi"), message("assistant", "yo")};
  conversation[0].id = "msg_a";
  conversation[1].id = "msg_b";
  const std::string text = conversation_to_json(conversation, 1);
  EXPECT_EQ(
      text,
      R"([{"id":"msg_a","role":"user","content":"hi"},{"id":"msg_b","role":"assistant","content":"yo","output":true}])");
  Conversation back;
  size_t output_items = 9;
  ASSERT_TRUE(conversation_from_json(text, "resp_1", &back, &output_items));
  EXPECT_EQ(back[0].id, "msg_a");
  EXPECT_EQ(back[1].id, "msg_b");
  EXPECT_EQ(output_items, 1u);
  // A background response in progress: named input, no output yet.
  ASSERT_TRUE(conversation_from_json(conversation_to_json(conversation, 0), "resp_1", &back,
                                     &output_items));
  EXPECT_EQ(output_items, 0u);
}

ConversationItem named(const std::string& id, const std::string& role, const std::string& content) {
  ConversationItem item = message(role, content);
  item.id = id;
  return item;
}

std::vector<std::string> ids(const ItemPage& page) {
  std::vector<std::string> out;
  for (const ConversationItem& item : page.items) out.push_back(item.id);
  return out;
}

TEST_F(ConversationServiceTest, InputItemsArePagedWithoutTheOutput) {
  Conversation conversation = {named("msg_1", "system", "be brief"), named("msg_2", "user", "hi"),
                               named("msg_3", "assistant", "hello"),
                               named("msg_4", "user", "again")};
  ASSERT_FALSE(service_->save({"resp_1", "{}", conversation, {named("msg_5", "assistant", "yo")}}));
  ItemPage page;
  ASSERT_FALSE(service_->input_items("resp_1", {}, &page));
  EXPECT_EQ(ids(page), (std::vector<std::string>{"msg_4", "msg_3", "msg_2", "msg_1"}));
  EXPECT_FALSE(page.has_more);

  ItemQuery query;
  query.limit = 2;
  query.ascending = true;
  ASSERT_FALSE(service_->input_items("resp_1", query, &(page = {})));
  EXPECT_EQ(ids(page), (std::vector<std::string>{"msg_1", "msg_2"}));
  EXPECT_TRUE(page.has_more);
  query.after = "msg_2";
  ASSERT_FALSE(service_->input_items("resp_1", query, &(page = {})));
  EXPECT_EQ(ids(page), (std::vector<std::string>{"msg_3", "msg_4"}));
  EXPECT_FALSE(page.has_more);
  query.ascending = false;
  query.after = "msg_3";
  ASSERT_FALSE(service_->input_items("resp_1", query, &(page = {})));
  EXPECT_EQ(ids(page), (std::vector<std::string>{"msg_2", "msg_1"}));

  query.after = "msg_5";  // the output is not an input item
  EXPECT_EQ(service_->input_items("resp_1", query, &(page = {})).param, "after");
  EXPECT_EQ(service_->input_items("resp_none", {}, &(page = {})).request_code, "not_found");
}

TEST_F(ConversationServiceTest, AResponseInProgressCannotBeContinued) {
  ASSERT_FALSE(service_->save({"resp_bg",
                               R"({"id":"resp_bg","status":"in_progress"})",
                               {named("msg_1", "user", "hi")},
                               {}}));
  Conversation conversation;
  EXPECT_EQ(service_->history("resp_bg", &conversation).param, "previous_response_id");
  ItemPage page;
  ASSERT_FALSE(service_->input_items("resp_bg", {}, &page));
  EXPECT_EQ(ids(page), (std::vector<std::string>{"msg_1"}));

  ASSERT_FALSE(service_->replace_object("resp_bg", R"({"id":"resp_bg","status":"failed"})"));
  EXPECT_FALSE(service_->history("resp_bg", &conversation));
  EXPECT_EQ(lines(conversation), (std::vector<std::string>{"user: hi"}));
  std::string object;
  ASSERT_FALSE(service_->find("resp_bg", &object));
  EXPECT_EQ(object, R"({"id":"resp_bg","status":"failed"})");
}

TEST(ChatMessages, InstructionsComeFirstAsASystemMessage) {
  const Conversation conversation = {message("user", "hi"), message("assistant", "hello")};
  std::vector<ChatMessage> messages = chat_messages(std::string("be brief"), conversation);
  ASSERT_EQ(messages.size(), 3u);
  EXPECT_EQ(messages[0].role, "system");
  EXPECT_EQ(messages[0].content, "be brief");
  EXPECT_EQ(messages[2].role, "assistant");
  EXPECT_EQ(messages[2].content, "hello");
  EXPECT_EQ(chat_messages(std::nullopt, conversation).size(), 2u);
}

}  // namespace
}  // namespace allm
