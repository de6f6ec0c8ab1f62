// What the text, audio and image managers share to get at a model: the registry entry of their
// modality (404 for an unknown model, 400 for one of another modality), loaded once through the
// lifecycle by the manager's loader, and --preload through the same path.
#include "core/manager_models.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "unchecked_memory.h"

namespace allm {
namespace {

struct FakeModel {
  std::string path;
};

class ManagerModelsTest : public ::testing::Test {
 protected:
  ModelRegistry registry_{"/nonexistent-models-dir",
                          {{"whisper", "/models/w.bin", {}, Modality::AUDIO},
                           {"sd", "/models/sd.safetensors", {}, Modality::IMAGE},
                           {"llm", "/models/m.gguf", {}, Modality::TEXT}}};
  UncheckedMemory memory_;
  ModelLifecycle lifecycle_{LifecycleConfig{}, memory_};
  int loads_ = 0;
  ManagerModels<FakeModel> models_{
      registry_, lifecycle_, Modality::AUDIO,
      [this](const ModelEntry& entry) {
        return ModelLoader<FakeModel>{
            [](MemoryEstimate* e) {
              e->weights = 1;
              return Error{};
            },
            [this, entry](Error*, uint64_t*) {
              ++loads_;
              return std::make_shared<FakeModel>(FakeModel{entry.path.string()});
            }};
      }};
};

TEST_F(ManagerModelsTest, LoadsTheRegisteredModelOnceWithTheManagersLoader) {
  EXPECT_FALSE(models_.preload("whisper"));
  Error error;
  ModelLease<FakeModel> lease = models_.acquire("whisper", &error);
  ASSERT_TRUE(lease) << error.message;
  EXPECT_EQ(lease->path, "/models/w.bin");
  EXPECT_EQ(loads_, 1);
  ASSERT_EQ(models_.loaded().size(), 1u);
  EXPECT_EQ(models_.loaded()[0].first, "whisper");
}

TEST_F(ManagerModelsTest, AnUnknownModelIsNotFound) {
  Error error;
  EXPECT_FALSE(models_.acquire("nope", &error));
  EXPECT_EQ(error.param, "model");
  EXPECT_EQ(error.request_code, "model_not_found");
  EXPECT_EQ(models_.preload("nope").request_code, "model_not_found");
  EXPECT_EQ(loads_, 0);
}

TEST_F(ManagerModelsTest, AModelOfAnotherModalitySaysWhatItIs) {
  Error error;
  EXPECT_FALSE(models_.acquire("sd", &error));
  EXPECT_EQ(error.param, "model");
  EXPECT_EQ(error.message, wrong_modality_error("sd", Modality::IMAGE, Modality::AUDIO).message);
  EXPECT_EQ(models_.preload("llm").message,
            wrong_modality_error("llm", Modality::TEXT, Modality::AUDIO).message);
  EXPECT_EQ(loads_, 0);
}

}  // namespace
}  // namespace allm
