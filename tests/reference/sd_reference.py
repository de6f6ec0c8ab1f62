#!/usr/bin/env python3
"""NumPy reference for diffusion.cpp, written from the published model definitions
(CompVis latent-diffusion `ldm/modules/diffusionmodules/openaimodel.py`, `attention.py`,
`model.py`; Hugging Face `CLIPTextModel`; open_clip's `transformer.py` and Stability's
`FrozenOpenCLIPEmbedder` (layer="penultimate"); OpenAI CLIP's `simple_tokenizer.py`; for SDXL,
Stability's generative-models `sgm/modules/encoders/modules.py` (FrozenCLIPEmbedder
layer="hidden" layer_idx=11, FrozenOpenCLIPEmbedder2 layer="penultimate" legacy=False with its
pooled output, ConcatTimestepEmbedderND outdim=256) and `sgm/modules/diffusionmodules/
openaimodel.py` (label_emb, transformer_depth per level) with diffusers'
StableDiffusionXLPipeline's add_time_ids).

Generates tiny random SD-1.x, SD-2.x and SDXL checkpoints with allm-make-sd-fixture, runs
allm-sd-probe on them and checks the tokenizer (exact), the text encoder (the conditioning layer
and the one before; SDXL: both encoders side by side and the pooled output), one UNet evaluation
(SD 2.x: linear projections, 64 channels per head; SDXL: the added conditioning and several
transformer blocks per level), the VAE decode and the VAE encode (mean x scale factor) against
this file's float64 computation.

usage: sd_reference.py FIXTURE_TOOL PROBE_TOOL WORK_DIR
"""
import json
import os
import re
import subprocess
import sys

import numpy as np

TOLERANCE = 1e-4  # max |ours - reference| / max(1, max |reference|)
PROMPT = "A photo of the cat,  and the DOG!"
LATENT_W, LATENT_H, TIMESTEP = 8, 6, 437.5


# --- checkpoint -------------------------------------------------------------------------------
def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        raw = data[8 + n + a:8 + n + b]
        if info["dtype"] == "BF16":  # the upper half of an F32
            v = (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            v = np.frombuffer(raw, dtype={"F32": np.float32, "F16": np.float16, "I64": np.int64}[info["dtype"]])
        out[name] = v.reshape(info["shape"]).astype(np.float64)
    return out


# --- tokenizer (OpenAI CLIP simple_tokenizer, ASCII text) ------------------------------------
def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def tokenize(text, tokdir, context=77, pad=None):
    vocab = json.load(open(os.path.join(tokdir, "vocab.json")))
    merges = [tuple(l.split()) for l in open(os.path.join(tokdir, "merges.txt")).read().split("\n")[1:] if l]
    ranks = {m: i for i, m in enumerate(merges)}
    byte_encoder = bytes_to_unicode()
    text = re.sub(r"\s+", " ", text).strip().lower()
    pat = re.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|[^\s\w]+|_+""", re.IGNORECASE)
    ids = []
    for token in pat.findall(text):
        word = tuple("".join(byte_encoder[b] for b in token.encode("utf-8")))
        word = word[:-1] + (word[-1] + "</w>",)
        while len(word) > 1:
            pairs = [(ranks.get((word[i], word[i + 1]), 1 << 30), i) for i in range(len(word) - 1)]
            best = min(pairs)
            if best[0] == 1 << 30:
                break
            first, second = word[best[1]], word[best[1] + 1]
            merged, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and word[i] == first and word[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = tuple(merged)
        ids += [vocab[p] for p in word]
    end = vocab["<|endoftext|>"]
    ids = [vocab["<|startoftext|>"]] + ids[:context - 2] + [end]
    return ids + [end if pad is None else pad] * (context - len(ids))


# --- layers ----------------------------------------------------------------------------------
def linear(x, w, p, bias=True):
    W = w[p + ".weight"]
    W = W.reshape(W.shape[0], W.shape[1])  # 1x1 convolutions too
    y = x @ W.T
    return y + w[p + ".bias"] if bias else y


def layer_norm(x, w, p, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w[p + ".weight"] + w[p + ".bias"]


def group_norm(x, w, p, eps, groups=32):
    c, h, wd = x.shape
    g = x.reshape(groups, -1)
    g = (g - g.mean(1, keepdims=True)) / np.sqrt(g.var(1, keepdims=True) + eps)
    return g.reshape(c, h, wd) * w[p + ".weight"][:, None, None] + w[p + ".bias"][:, None, None]


def conv2d(x, w, p, stride=1, pad=None):
    k = w[p + ".weight"]
    oc, ic, kh, kw = k.shape
    pad = kh // 2 if pad is None else pad
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    oh = (x.shape[1] + 2 * pad - kh) // stride + 1
    ow = (x.shape[2] + 2 * pad - kw) // stride + 1
    out = np.zeros((oc, oh, ow))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i:i + stride * oh:stride, j:j + stride * ow:stride]
            out += np.einsum("oc,chw->ohw", k[:, :, i, j], patch)
    return out + w[p + ".bias"][:, None, None]


def silu(x):
    return x / (1 + np.exp(-x))


def gelu(x):
    from math import erf
    return 0.5 * x * (1 + np.vectorize(erf)(x / np.sqrt(2)))


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def attention(q, k, v, heads, mask=None):
    t, d = q.shape
    dh = d // heads
    q = q.reshape(t, heads, dh).transpose(1, 0, 2)
    k = k.reshape(k.shape[0], heads, dh).transpose(1, 0, 2)
    v = v.reshape(v.shape[0], heads, dh).transpose(1, 0, 2)
    s = q @ k.transpose(0, 2, 1) / np.sqrt(dh)
    if mask is not None:
        s = s + mask
    return (softmax(s) @ v).transpose(1, 0, 2).reshape(t, d)


# --- text encoders: token + position embeddings, causal mask, 64 channels per head ------------
def text_input(w, token_embedding, position_embedding, ids):
    x = w[token_embedding][ids] + w[position_embedding][:len(ids)]
    return x, max(1, x.shape[1] // 64), np.triu(np.full((len(ids), len(ids)), -np.inf), 1)


def count(w, pattern):
    n = 0
    while pattern.format(n) in w:
        n += 1
    return n


# --- CLIP text model (Hugging Face CLIPTextModel, quick_gelu) --------------------------------
def clip_text(w, ids, skip=1, p="cond_stage_model.transformer.text_model.", final_norm=True):
    """final_norm False (SDXL): hidden_states[-1 - skip] as they are."""
    x, heads, mask = text_input(w, p + "embeddings.token_embedding.weight", p + "embeddings.position_embedding.weight", ids)
    n = count(w, p + "encoder.layers.{}.layer_norm1.weight")
    if not final_norm:
        n -= 1
    for i in range(n - (skip - 1)):
        l = p + f"encoder.layers.{i}."
        h = layer_norm(x, w, l + "layer_norm1")
        h = attention(linear(h, w, l + "self_attn.q_proj"), linear(h, w, l + "self_attn.k_proj"),
                      linear(h, w, l + "self_attn.v_proj"), heads, mask)
        x = x + linear(h, w, l + "self_attn.out_proj")
        h = linear(layer_norm(x, w, l + "layer_norm2"), w, l + "mlp.fc1")
        h = h / (1 + np.exp(-1.702 * h))
        x = x + linear(h, w, l + "mlp.fc2")
    return layer_norm(x, w, p + "final_layer_norm") if final_norm else x


# --- OpenCLIP ViT-H text model (SD 2.x): fused in_proj, GELU, penultimate layer + ln_final ----
def openclip_blocks(w, p, x, heads, mask, first, last):
    for i in range(first, last):
        l = p + f"transformer.resblocks.{i}."
        h = layer_norm(x, w, l + "ln_1")
        qkv = h @ w[l + "attn.in_proj_weight"].T + w[l + "attn.in_proj_bias"]
        q, k, v = np.split(qkv, 3, axis=-1)
        x = x + linear(attention(q, k, v, heads, mask), w, l + "attn.out_proj")
        x = x + linear(gelu(linear(layer_norm(x, w, l + "ln_2"), w, l + "mlp.c_fc")), w, l + "mlp.c_proj")
    return x


def openclip_text(w, ids, skip=1):
    p = "cond_stage_model.model."
    x, heads, mask = text_input(w, p + "token_embedding.weight", p + "positional_embedding", ids)
    n = count(w, p + "transformer.resblocks.{}.ln_1.weight")
    x = openclip_blocks(w, p, x, heads, mask, 0, n - 1 - (skip - 1))  # "penultimate": the last block is not run
    return layer_norm(x, w, p + "ln_final")


# --- SDXL's conditioner: CLIP ViT-L (hidden_states[11], no final norm) beside OpenCLIP ViT-bigG
# (the penultimate block's output, no ln_final; pooled: ln_final of the last block's output at
# the end token (argmax id) @ text_projection) ------------------------------------------------
def sdxl_text(w, ids, ids2, skip=1):
    a = clip_text(w, ids, skip, "conditioner.embedders.0.transformer.text_model.", final_norm=False)
    p = "conditioner.embedders.1.model."
    x, heads, mask = text_input(w, p + "token_embedding.weight", p + "positional_embedding", ids2)
    n = count(w, p + "transformer.resblocks.{}.ln_1.weight")
    b = openclip_blocks(w, p, x, heads, mask, 0, n - 1 - (skip - 1))
    last = openclip_blocks(w, p, x, heads, mask, 0, n)
    pooled = layer_norm(last, w, p + "ln_final")[int(np.argmax(ids2))] @ w[p + "text_projection"]
    return np.concatenate([a, b], axis=-1), pooled


# --- UNet (ldm openaimodel.UNetModel, SpatialTransformer) ------------------------------------
U = "model.diffusion_model."


def timestep_embedding(t, dim, max_period=10000):
    half = dim // 2
    freqs = np.exp(-np.log(max_period) * np.arange(half) / half)
    args = t * freqs
    return np.concatenate([np.cos(args), np.sin(args)])


def res_block(w, p, x, emb):
    h = conv2d(silu(group_norm(x, w, p + "in_layers.0", 1e-5)), w, p + "in_layers.2")
    h = h + linear(silu(emb), w, p + "emb_layers.1")[:, None, None]
    h = conv2d(silu(group_norm(h, w, p + "out_layers.0", 1e-5)), w, p + "out_layers.3")
    skip = conv2d(x, w, p + "skip_connection") if (p + "skip_connection.weight") in w else x
    return skip + h


def spatial_transformer(w, p, x, context):
    c, h, wd = x.shape
    # SD 1.x (1x1-convolution projections): 8 heads; SD 2.x (linear ones): 64 channels per head.
    heads = max(1, c // 64) if w[p + "proj_in.weight"].ndim == 2 else 8
    t = group_norm(x, w, p + "norm", 1e-6).reshape(c, h * wd).T
    t = linear(t, w, p + "proj_in")
    for d in range(count(w, p + "transformer_blocks.{}.norm1.weight")):  # SDXL: transformer_depth
        b = p + f"transformer_blocks.{d}."
        n = layer_norm(t, w, b + "norm1")
        t = t + linear(attention(linear(n, w, b + "attn1.to_q", False), linear(n, w, b + "attn1.to_k", False),
                                 linear(n, w, b + "attn1.to_v", False), heads), w, b + "attn1.to_out.0")
        n = layer_norm(t, w, b + "norm2")
        t = t + linear(attention(linear(n, w, b + "attn2.to_q", False), linear(context, w, b + "attn2.to_k", False),
                                 linear(context, w, b + "attn2.to_v", False), heads), w, b + "attn2.to_out.0")
        hproj = linear(layer_norm(t, w, b + "norm3"), w, b + "ff.net.0.proj")
        a, gate = np.split(hproj, 2, axis=-1)
        t = t + linear(a * gelu(gate), w, b + "ff.net.2")
    t = linear(t, w, p + "proj_out")
    return x + t.T.reshape(c, h, wd)


def run_block(w, p, x, emb, context):
    j = 0
    while True:
        l = f"{p}{j}."
        if (l + "in_layers.0.weight") in w:
            x = res_block(w, l, x, emb)
        elif (l + "proj_in.weight") in w:
            x = spatial_transformer(w, l, x, context)
        elif (l + "op.weight") in w:
            x = conv2d(x, w, l + "op", stride=2)
        elif (l + "conv.weight") in w:
            x = conv2d(x.repeat(2, axis=1).repeat(2, axis=2), w, l + "conv")
        else:
            return x
        j += 1


def unet(w, x, t, context, pooled=None, sizes=None):
    mc = w[U + "input_blocks.0.0.weight"].shape[0]
    emb = linear(silu(linear(timestep_embedding(t, mc), w, U + "time_embed.0")), w, U + "time_embed.2")
    if pooled is not None:  # SDXL: y = [pooled, emb(orig h), emb(orig w), emb(crop top), ...]
        y = np.concatenate([pooled] + [timestep_embedding(v, 256) for v in sizes])
        emb = emb + linear(silu(linear(y, w, U + "label_emb.0.0")), w, U + "label_emb.0.2")
    x = conv2d(x, w, U + "input_blocks.0.0")
    skips = [x]
    i = 1
    while (U + f"input_blocks.{i}.0.op.weight") in w or (U + f"input_blocks.{i}.0.in_layers.0.weight") in w:
        x = run_block(w, U + f"input_blocks.{i}.", x, emb, context)
        skips.append(x)
        i += 1
    x = run_block(w, U + "middle_block.", x, emb, context)
    i = 0
    while (U + f"output_blocks.{i}.0.in_layers.0.weight") in w:
        x = run_block(w, U + f"output_blocks.{i}.", np.concatenate([x, skips.pop()]), emb, context)
        i += 1
    return conv2d(silu(group_norm(x, w, U + "out.0", 1e-5)), w, U + "out.2")


# --- VAE decoder (ldm model.Decoder) ---------------------------------------------------------
def vae_block(w, p, x):
    h = conv2d(silu(group_norm(x, w, p + "norm1", 1e-6)), w, p + "conv1")
    h = conv2d(silu(group_norm(h, w, p + "norm2", 1e-6)), w, p + "conv2")
    return (conv2d(x, w, p + "nin_shortcut") if (p + "nin_shortcut.weight") in w else x) + h


def vae_mid(w, p, x):
    x = vae_block(w, p + "mid.block_1.", x)
    c, h, wd = x.shape
    t = group_norm(x, w, p + "mid.attn_1.norm", 1e-6).reshape(c, -1).T
    a = attention(linear(t, w, p + "mid.attn_1.q"), linear(t, w, p + "mid.attn_1.k"), linear(t, w, p + "mid.attn_1.v"), 1)
    x = x + linear(a, w, p + "mid.attn_1.proj_out").T.reshape(c, h, wd)
    return vae_block(w, p + "mid.block_2.", x)


def vae_decode(w, z):
    p = "first_stage_model.decoder."
    z = conv2d(z, w, "first_stage_model.post_quant_conv")
    x = conv2d(z, w, p + "conv_in")
    x = vae_mid(w, p, x)
    levels = 0
    while (p + f"up.{levels}.block.0.conv1.weight") in w:
        levels += 1
    for i in reversed(range(levels)):
        j = 0
        while (p + f"up.{i}.block.{j}.conv1.weight") in w:
            x = vae_block(w, p + f"up.{i}.block.{j}.", x)
            j += 1
        if (p + f"up.{i}.upsample.conv.weight") in w:
            x = conv2d(x.repeat(2, axis=1).repeat(2, axis=2), w, p + f"up.{i}.upsample.conv")
    return conv2d(silu(group_norm(x, w, p + "norm_out", 1e-6)), w, p + "conv_out")


# --- VAE encoder (ldm model.Encoder; Downsample pads right and bottom, stride 2, no padding) --
def vae_encode(w, img, scale):
    p = "first_stage_model.encoder."
    x = conv2d(img, w, p + "conv_in")
    i = 0
    while (p + f"down.{i}.block.0.conv1.weight") in w:
        j = 0
        while (p + f"down.{i}.block.{j}.conv1.weight") in w:
            x = vae_block(w, p + f"down.{i}.block.{j}.", x)
            j += 1
        if (p + f"down.{i}.downsample.conv.weight") in w:
            x = conv2d(np.pad(x, ((0, 0), (0, 1), (0, 1))), w, p + f"down.{i}.downsample.conv", stride=2, pad=0)
        i += 1
    x = vae_mid(w, p, x)
    x = conv2d(silu(group_norm(x, w, p + "norm_out", 1e-6)), w, p + "conv_out")
    x = conv2d(x, w, "first_stage_model.quant_conv")
    return x[:x.shape[0] // 2] * scale  # the mean of the diagonal Gaussian


# --- the check -------------------------------------------------------------------------------
def compare(name, ours, ref):
    err = float(np.max(np.abs(ours - ref)) / max(1.0, float(np.max(np.abs(ref)))))
    ok = err <= TOLERANCE and np.all(np.isfinite(ours))
    print(f"{name:12s} max rel. error {err:.2e} (tolerance {TOLERANCE:.0e}) {'ok' if ok else 'FAILED'}")
    return ok


def check(fixture_tool, probe, work, variant, fixture_args, latent_w=LATENT_W, latent_h=LATENT_H):
    print(f"== {variant}")
    os.makedirs(work, exist_ok=True)
    subprocess.run([fixture_tool, work] + fixture_args, check=True)
    w = load_safetensors(os.path.join(work, "model.safetensors"))
    sd2 = "cond_stage_model.model.token_embedding.weight" in w
    sdxl = "conditioner.embedders.1.model.token_embedding.weight" in w
    text_model, pad = (openclip_text, 0) if sd2 else (clip_text, None)
    rng = np.random.default_rng(0)
    d = w[U + "input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight" if sdxl else
          U + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"].shape[1]
    x = rng.standard_normal((4, latent_h, latent_w))
    context = rng.standard_normal((77, d)) * 0.5
    z = rng.standard_normal((4, latent_h, latent_w)) * 4
    img = np.tanh(rng.standard_normal((3, 8 * latent_h, 8 * latent_w)))
    pooled, sizes = None, None
    if sdxl:
        pooled = rng.standard_normal(w["conditioner.embedders.1.model.text_projection"].shape[1])
        sizes = np.array([1024.0, 768.0, 32.0, 16.0, 896.0, 640.0], dtype=np.float32)
        pooled.astype(np.float32).tofile(os.path.join(work, "unet_pooled.f32"))
        sizes.tofile(os.path.join(work, "unet_sizes.f32"))
    x.astype(np.float32).tofile(os.path.join(work, "unet_x.f32"))
    context.astype(np.float32).tofile(os.path.join(work, "context.f32"))
    z.astype(np.float32).tofile(os.path.join(work, "vae_z.f32"))
    img.astype(np.float32).tofile(os.path.join(work, "vae_img.f32"))
    subprocess.run([probe, os.path.join(work, "model.safetensors"), work, PROMPT, str(latent_w), str(latent_h),
                    str(TIMESTEP)], check=True)

    def read(name, shape, dtype=np.float32):
        return np.fromfile(os.path.join(work, name), dtype=dtype).reshape(shape).astype(np.float64)

    ok = True
    ids = tokenize(PROMPT, os.path.join(work, "tokenizer"), pad=pad)
    ours_ids = np.fromfile(os.path.join(work, "tokens.i32"), dtype=np.int32).tolist()
    print(f"tokens       {'ok' if ours_ids == ids else 'FAILED'} {ours_ids[:12]}")
    ok &= ours_ids == ids
    x32, c32, z32, i32 = (a.astype(np.float32).astype(np.float64) for a in (x, context, z, img))
    if sdxl:  # the second tokenizer pads with "!" (id 0), as open_clip and tokenizer_2
        ids2 = tokenize(PROMPT, os.path.join(work, "tokenizer"), pad=0)
        ref, ref_pooled = sdxl_text(w, ids, ids2)
        ok &= compare("text", read("text.f32", (77, d)), ref)
        ok &= compare("pooled", read("pooled.f32", ref_pooled.shape), ref_pooled)
        ok &= compare("text skip 2", read("text_skip2.f32", (77, d)), sdxl_text(w, ids, ids2, skip=2)[0])
        pooled = pooled.astype(np.float32).astype(np.float64)
    else:
        ok &= compare("text", read("text.f32", (77, d)), text_model(w, ids))
        ok &= compare("text skip 2", read("text_skip2.f32", (77, d)), text_model(w, ids, skip=2))
    ok &= compare("unet", read("unet.f32", x.shape), unet(w, x32, TIMESTEP, c32, pooled, sizes))
    ok &= compare("vae", read("vae.f32", (3, 8 * latent_h, 8 * latent_w)), vae_decode(w, z32))
    scale = 0.13025 if sdxl else 0.18215
    ok &= compare("vae encode", read("vae_enc.f32", x.shape), vae_encode(w, i32, scale))
    return ok


def main():
    fixture_tool, probe, work = sys.argv[1:4]
    ok = check(fixture_tool, probe, os.path.join(work, "sd1"), "SD 1.x", [])
    ok &= check(fixture_tool, probe, os.path.join(work, "sd2"), "SD 2.x", ["--sd2"])
    # SDXL's three levels halve the latent twice: sides multiples of 4.
    ok &= check(fixture_tool, probe, os.path.join(work, "sdxl"), "SDXL", ["--sdxl"], 8, 4)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
