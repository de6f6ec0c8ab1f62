#!/usr/bin/env python3
"""Reference logits from Hugging Face transformers for our tiny random fixtures.

Run where PyTorch and transformers are installed (the lent GPU machine has them; CI does not):
    python3 tests/hf_reference/make_hf_reference.py MODELS_DIR OUT_DIR
MODELS_DIR holds one folder per architecture made by
    allm-make-hf-fixture --arch ARCH --dtype f32 --out MODELS_DIR/ARCH   (default seed)
For each, transformers (CPU, float32, eager attention) runs the token ids below in one forward
pass and the logits of every position are written as OUT_DIR/ARCH.f32 (little-endian float32,
row-major [positions, vocab]) with OUT_DIR/ARCH.json (token ids, shape, versions). The C++ test
tests/hf_reference/hf_reference_test.cpp regenerates the same fixtures and compares
safetensors.cpp's logits with these files, so the reference is transformers' own code, not ours.

gpt-oss: transformers dequantises the MXFP4 experts itself (Mxfp4Config(dequantize=True)); the
dequantised values are exact in any float type, so the model is then run in float32.
phi3 also gets a long prompt (past original_max_position_embeddings) for the LongRoPE long factors,
and YaRN fixtures (folder names with "yarn", from --yarn exact|rounded) one where their scaled
frequencies move the logits more than at the first positions.
"""
import json
import os
import sys
import traceback

import numpy as np
import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM

torch.set_num_threads(max(1, os.cpu_count() or 1))
torch.backends.cuda.matmul.allow_tf32 = False


def token_ids(vocab_size, count):
    # Spread over the vocabulary, away from the special tokens at its end.
    return [(i * 97 + 13) % (vocab_size - 3) for i in range(count)]


def load(path, arch):
    config = AutoConfig.from_pretrained(path)
    if config.pad_token_id is not None and config.pad_token_id >= config.vocab_size:
        config.pad_token_id = None  # Phi3Config defaults to 32000, past our tiny vocabulary
    kwargs = {"config": config, "dtype": torch.float32, "attn_implementation": "eager"}
    if arch == "gpt-oss":
        from transformers import Mxfp4Config
        kwargs["quantization_config"] = Mxfp4Config(dequantize=True)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except Exception:
        if arch != "gpt-oss":
            raise
        traceback.print_exc()
        print("gpt-oss: dequantising with transformers' MXFP4 helper instead", flush=True)
        model = load_gpt_oss_dequantised(path)
    return model.float().eval()


def load_gpt_oss_dequantised(path):
    # Fallback when the quantizer refuses to run here: transformers' own MXFP4 unpacking
    # (convert_moe_packed_tensors returns the layout its experts module expects).
    from safetensors.torch import load_file
    from transformers.integrations.mxfp4 import convert_moe_packed_tensors
    config = AutoConfig.from_pretrained(path)
    del config.quantization_config
    config._attn_implementation = "eager"
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    state = {}
    for name in sorted(os.listdir(path)):
        if name.endswith(".safetensors"):
            state.update(load_file(os.path.join(path, name)))
    for key in [k for k in state if k.endswith("_blocks")]:
        base = key[: -len("_blocks")]
        state[base] = convert_moe_packed_tensors(state.pop(key), state.pop(base + "_scales"),
                                                 dtype=torch.float32)
    missing, unexpected = model.load_state_dict(state, strict=False)
    print("gpt-oss fallback: missing", missing, "unexpected", unexpected, flush=True)
    if missing or unexpected:
        raise RuntimeError("gpt-oss fallback: state dict does not match the model")
    return model


def write(out_dir, name, ids, logits, extra):
    logits = np.ascontiguousarray(logits.astype("<f4"))
    logits.tofile(os.path.join(out_dir, name + ".f32"))
    meta = {"tokens": ids, "positions": logits.shape[0], "vocab": logits.shape[1],
            "transformers": transformers.__version__, "torch": torch.__version__,
            "max_abs_logit": float(np.abs(logits).max())}
    meta.update(extra)
    with open(os.path.join(out_dir, name + ".json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(f"{name}: {logits.shape} max|logit| {meta['max_abs_logit']:.4f}", flush=True)


def run(model, ids, keep_last=None):
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids]), use_cache=False)
    logits = out.logits[0].float().numpy()
    return logits if keep_last is None else logits[-keep_last:]


def main():
    models_dir, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    print("transformers", transformers.__version__, "torch", torch.__version__, flush=True)
    failures = 0
    only = sys.argv[3:]
    for arch in sorted(os.listdir(models_dir)):
        if only and arch not in only:
            continue
        path = os.path.join(models_dir, arch)
        try:
            model = load(path, arch)
            vocab = AutoConfig.from_pretrained(path).vocab_size
            if arch == "gpt-oss":  # how transformers laid out the experts, for the record
                for name, p in model.model.layers[0].mlp.named_parameters():
                    print(f"  gpt-oss layer 0 mlp.{name} {tuple(p.shape)} {p.dtype}")
            ids = token_ids(vocab, 20)
            write(out_dir, arch, ids, run(model, ids), {"first_position": 0})
            if arch == "phi3" or "yarn" in arch:  # scaled rope shows at far positions
                long_ids = token_ids(vocab, 300)
                write(out_dir, arch + "-long", long_ids, run(model, long_ids, keep_last=4),
                      {"first_position": 296})
        except Exception:
            failures += 1
            print(f"{arch}: FAILED", flush=True)
            traceback.print_exc()
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
