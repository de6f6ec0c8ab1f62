#include "hf_fixture/families.h"

namespace allm::fixture {

const Family* family_of(Arch arch) {
  switch (arch) {
    case Arch::Gemma:
    case Arch::Gemma2: return &kGemmaFamily;
    case Arch::Nemotron: return &kNemotronFamily;
    case Arch::GptOss: return &kGptOssFamily;
    case Arch::Phi:
    case Arch::Phi3: return &kPhiFamily;
    default: return nullptr;
  }
}

}  // namespace allm::fixture
