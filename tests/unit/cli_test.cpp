// The pure pieces of the client commands: their command lines, the chat prompt's input, server-sent
// events as they arrive, and `allm ps`'s table.
#include <gtest/gtest.h>

#include <cstdlib>
#include <set>

#include "cli/chat_input.h"
#include "cli/client_options.h"
#include "cli/commands.h"
#include "cli/ps_table.h"
#include "cli/sse_reader.h"

using namespace allm;

namespace {

template <typename Options, typename Parse>
bool parse(Parse parse_fn, std::vector<std::string> args, Options* options, std::string* problem,
           bool* help) {
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return parse_fn(static_cast<int>(argv.size()), argv.data(), options, problem, help);
}

bool parse_run(std::vector<std::string> args, RunOptions* o, std::string* problem) {
  bool help = false;
  return parse(parse_run_options, std::move(args), o, problem, &help);
}

}  // namespace

TEST(Commands, TableNamesEachCommandOnce) {
  std::set<std::string> names;
  for (const Command& command : commands()) {
    EXPECT_TRUE(names.insert(command.name).second) << command.name;
    EXPECT_NE(command.run, nullptr);
    EXPECT_GT(std::string(command.summary).size(), 0u);
  }
  for (const char* name : {"serve", "run", "ps"}) EXPECT_EQ(names.count(name), 1u) << name;
}

TEST(ClientOptions, RunTakesTheModelThePromptAndSampling) {
  RunOptions o;
  std::string problem;
  ASSERT_TRUE(parse_run({"--temperature=0.5", "llama3", "--seed", "-9223372036854775808",
                         "--max-tokens", "64", "--system", "Be brief.", "--", "-a prompt"},
                        &o, &problem))
      << problem;
  EXPECT_EQ(o.model, "llama3");
  EXPECT_EQ(o.prompt, "-a prompt");  // after --, a prompt may start with '-'
  EXPECT_EQ(o.temperature, 0.5);
  EXPECT_EQ(o.seed, INT64_MIN);
  EXPECT_EQ(o.max_tokens, 64);
  EXPECT_EQ(o.system, "Be brief.");
  EXPECT_FALSE(o.verbose);

  RunOptions without_prompt;
  ASSERT_TRUE(parse_run({"m=/x.gguf", "--verbose"}, &without_prompt, &problem));
  EXPECT_EQ(without_prompt.model, "m=/x.gguf");
  EXPECT_FALSE(without_prompt.prompt);
  EXPECT_TRUE(without_prompt.verbose);
}

TEST(ClientOptions, RunRefusesBadCommandLines) {
  const std::vector<std::vector<std::string>> bad = {
      {},                                      // no model
      {"m", "one", "two"},                     // an unquoted prompt
      {"m", "--temperature", "3"},             // out of range
      {"m", "--max-tokens", "0"},              // out of range
      {"m", "--seed", "9223372036854775808"},  // past int64
      {"m", "--port"},                         // no value
      {"m", "--verbose=1"},                    // a switch with a value
      {"m", "--bogus"},                        // unknown
  };
  for (const auto& args : bad) {
    RunOptions o;
    std::string problem;
    EXPECT_FALSE(parse_run(args, &o, &problem)) << args.size();
    EXPECT_FALSE(problem.empty());
  }
}

TEST(ClientOptions, AddressFromTheEnvironmentThenFlags) {
  setenv("ALLM_HOST", "10.0.0.2", 1);
  setenv("ALLM_PORT", "9000", 1);
  setenv("ALLM_API_KEY", "sk-one,sk-two", 1);
  PsOptions o;
  std::string problem;
  bool help = false;
  const bool ok = parse(parse_ps_options, {"--port", "9100", "--json"}, &o, &problem, &help);
  unsetenv("ALLM_HOST");
  unsetenv("ALLM_PORT");
  unsetenv("ALLM_API_KEY");
  ASSERT_TRUE(ok) << problem;
  EXPECT_EQ(o.server.host, "10.0.0.2");
  EXPECT_EQ(o.server.port, 9100);         // the flag wins
  EXPECT_EQ(o.server.api_key, "sk-one");  // the server's first key
  EXPECT_EQ(o.server.url(), "http://10.0.0.2:9100");
  EXPECT_TRUE(o.json);

  PsOptions defaults;
  ASSERT_TRUE(parse(parse_ps_options, {}, &defaults, &problem, &help));
  EXPECT_EQ(defaults.server.url(), "http://127.0.0.1:8080");  // allm serve's defaults
  EXPECT_FALSE(parse(parse_ps_options, {"extra"}, &defaults, &problem, &help));
  ASSERT_TRUE(parse(parse_ps_options, {"--help"}, &defaults, &problem, &help));
  EXPECT_TRUE(help);
  setenv("ALLM_PORT", "http", 1);
  PsOptions bad_env;
  EXPECT_FALSE(parse(parse_ps_options, {}, &bad_env, &problem, &help));
  unsetenv("ALLM_PORT");
  EXPECT_EQ(problem.rfind("ALLM_PORT: ", 0), 0u) << problem;
  ServerAddress v6{"::1", 8080, ""};
  EXPECT_EQ(v6.url(), "http://[::1]:8080");
}

TEST(ChatInput, OneLineMessagesAndCommands) {
  ChatInput input;
  EXPECT_EQ(input.add_line("hello there").kind, ChatInput::Kind::MESSAGE);
  EXPECT_EQ(input.add_line("hello there").text, "hello there");
  EXPECT_EQ(input.add_line("   ").kind, ChatInput::Kind::NOTHING);
  EXPECT_EQ(input.add_line("/bye").kind, ChatInput::Kind::BYE);
  EXPECT_EQ(input.add_line("/clear").kind, ChatInput::Kind::CLEAR);
  EXPECT_EQ(input.add_line("/?").kind, ChatInput::Kind::HELP);
  const ChatInput::Entry unknown = input.add_line("/save this");
  EXPECT_EQ(unknown.kind, ChatInput::Kind::UNKNOWN);
  EXPECT_EQ(unknown.text, "/save");
  EXPECT_FALSE(input.in_block());
}

TEST(ChatInput, BlocksBetweenTripleQuotes) {
  ChatInput input;
  EXPECT_EQ(input.add_line("\"\"\"first").kind, ChatInput::Kind::NOTHING);
  EXPECT_TRUE(input.in_block());
  EXPECT_EQ(input.add_line("").kind, ChatInput::Kind::NOTHING);      // blank lines are kept
  EXPECT_EQ(input.add_line("/bye").kind, ChatInput::Kind::NOTHING);  // text, not a command
  const ChatInput::Entry done = input.add_line("last\"\"\"");
  EXPECT_EQ(done.kind, ChatInput::Kind::MESSAGE);
  EXPECT_EQ(done.text, "first\n\n/bye\nlast");
  EXPECT_FALSE(input.in_block());

  EXPECT_EQ(input.add_line("\"\"\"").kind, ChatInput::Kind::NOTHING);
  EXPECT_EQ(input.add_line("only").kind, ChatInput::Kind::NOTHING);
  EXPECT_EQ(input.add_line("\"\"\"").text, "only");
  EXPECT_EQ(input.add_line("\"\"\"one line\"\"\"").text, "one line");
  EXPECT_EQ(input.add_line("\"\"\"").kind, ChatInput::Kind::NOTHING);  // an empty block sends
  EXPECT_EQ(input.add_line("\"\"\"").kind, ChatInput::Kind::NOTHING);  // nothing

  EXPECT_EQ(input.add_line("\"\"\"dropped").kind, ChatInput::Kind::NOTHING);
  input.reset();  // Ctrl-C
  EXPECT_FALSE(input.in_block());
  EXPECT_EQ(input.add_line("fresh").text, "fresh");
}

TEST(ChatInput, TakeLinesKeepsTheUnfinishedLine) {
  std::string pending = "one\r\ntwo\nthr";
  EXPECT_EQ(take_lines(&pending), (std::vector<std::string>{"one", "two"}));
  EXPECT_EQ(pending, "thr");
  pending += "ee\n";
  EXPECT_EQ(take_lines(&pending), (std::vector<std::string>{"three"}));
  EXPECT_EQ(pending, "");
}

TEST(SseReader, EventsAcrossPieces) {
  SseReader sse;
  EXPECT_TRUE(sse.feed(": comment\n\nda").empty());
  EXPECT_TRUE(sse.feed("ta: {\"a\":1}\r").empty());
  EXPECT_EQ(sse.feed("\n\r\nevent: x\ndata: one\ndata:two\n\ndata: [DONE]\n"),
            (std::vector<std::string>{"{\"a\":1}", "one\ntwo"}));
  EXPECT_EQ(sse.feed("\n"), (std::vector<std::string>{"[DONE]"}));
  EXPECT_TRUE(sse.feed("event: only\n\n").empty());  // no data: no event
}

TEST(PsTable, FormatDuration) {
  EXPECT_EQ(format_duration(0), "0s");
  EXPECT_EQ(format_duration(59.4), "59s");
  EXPECT_EQ(format_duration(184), "3m 04s");
  EXPECT_EQ(format_duration(7800), "2h 10m");
  EXPECT_EQ(format_duration(-1), "0s");
}

TEST(PsTable, OneAlignedRowPerModel) {
  const json loaded = json::parse(R"({"object":"list","keep_alive_seconds":300,"data":[
    {"id":"llama3","modality":"text","memory_bytes":5368709120,"ram_bytes":1073741824,
     "vram_bytes":4294967296,"requests":3,"running":2,"queued":1,
     "devices":[{"name":"CPU","layers":1},{"name":"RPC0","layers":16}],"idle_seconds":0,
     "unloads_in_seconds":null},
    {"id":"whisper","modality":"audio","memory_bytes":157286400,"ram_bytes":157286400,
     "vram_bytes":0,"requests":0,"idle_seconds":12.2,"unloads_in_seconds":287.8},
    {"id":"sd","modality":"image","memory_bytes":2097152,"ram_bytes":2097152,"vram_bytes":0,
     "requests":1,"idle_seconds":0,"unloads_in_seconds":null}]})");
  EXPECT_EQ(format_ps_table(loaded),
            "ID        MODALITY   RAM         VRAM       DEVICES         REQUESTS              "
            "IDLE   UNLOADS\n"
            "llama3    text       1.00 GiB    4.00 GiB   CPU:1 RPC0:16   2 running, 1 queued   "
            "busy   -\n"
            "whisper   audio      150.0 MiB   -          -               -                     "
            "12s    in 4m 48s\n"
            "sd        image      2.0 MiB     -          -               1                     "
            "busy   -\n");
  json never = loaded;
  never["data"] = json::array({loaded["data"][1]});
  never["data"][0]["unloads_in_seconds"] = nullptr;
  EXPECT_NE(format_ps_table(never).find("never"), std::string::npos);
  EXPECT_EQ(format_ps_table(json::parse(R"({"data":[]})")),
            "ID   MODALITY   RAM   VRAM   DEVICES   REQUESTS   IDLE   UNLOADS\n");
  EXPECT_EQ(format_ps_table(json::parse(R"({"data":"bogus"})")).find('\n') + 1,
            format_ps_table(json::parse(R"({"data":[]})")).size());
}
