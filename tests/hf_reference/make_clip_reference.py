#!/usr/bin/env python3
"""Tiny random CLIP text encoders and their outputs from Hugging Face transformers.

Run where PyTorch and transformers are installed (the lent GPU machine has them; CI does not):
    python3 tests/hf_reference/make_clip_reference.py OUT_DIR
Writes, for the SD 1.x shape (quick_gelu, as CLIP ViT-L/14) and the SD 2.x shape (gelu, as
OpenCLIP ViT-H/14 converted to CLIPTextModel by diffusers):
    OUT_DIR/clip-<variant>/config.json, model.safetensors   (CLIPTextModel.save_pretrained, F32:
        the text_encoder/ folder of a diffusers layout)
    OUT_DIR/clip-<variant>.json   token ids (77, start/end/padding as CLIP pads) and shapes
    OUT_DIR/clip-<variant>.last.f32         last_hidden_state [77, hidden] (final layer norm)
    OUT_DIR/clip-<variant>.penultimate.f32  hidden_states[-2] [77, hidden] (clip-skip 2, no norm)
so that our diffusion library's text encoder can be checked against transformers' own code.
"""
import json
import os
import sys

import numpy as np
import torch
import transformers
from transformers import CLIPTextConfig, CLIPTextModel

VOCAB = 1000
START, END = VOCAB - 2, VOCAB - 1


def tokens():
    body = [(i * 37 + 5) % (VOCAB - 2) for i in range(9)]
    ids = [START] + body + [END]
    return ids + [END] * (77 - len(ids))  # SD 1.x pads with the end token


def make(out_dir, variant, act, seed):
    torch.manual_seed(seed)
    config = CLIPTextConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64,
                            num_hidden_layers=3, num_attention_heads=4,
                            max_position_embeddings=77, hidden_act=act, projection_dim=32,
                            bos_token_id=START, eos_token_id=END, pad_token_id=END)
    model = CLIPTextModel(config).float().eval()
    with torch.no_grad():  # default init leaves norms at 1/0: perturb them so they matter
        for name, p in model.named_parameters():
            if "layer_norm" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    folder = os.path.join(out_dir, "clip-" + variant)
    model.save_pretrained(folder, safe_serialization=True)
    ids = tokens()
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids]), output_hidden_states=True)
    last = out.last_hidden_state[0].numpy().astype("<f4")
    penultimate = out.hidden_states[-2][0].numpy().astype("<f4")
    last.tofile(os.path.join(out_dir, f"clip-{variant}.last.f32"))
    penultimate.tofile(os.path.join(out_dir, f"clip-{variant}.penultimate.f32"))
    with open(os.path.join(out_dir, f"clip-{variant}.json"), "w") as f:
        json.dump({"tokens": ids, "hidden_act": act, "shape": list(last.shape),
                   "transformers": transformers.__version__, "torch": torch.__version__}, f,
                  indent=1)
    print(f"clip-{variant}: last max|x| {np.abs(last).max():.4f}", flush=True)


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    make(out_dir, "sd1", "quick_gelu", 1)
    make(out_dir, "sd2", "gelu", 2)


if __name__ == "__main__":
    main()
