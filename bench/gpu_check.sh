#!/usr/bin/env bash
# The GPU checks of safetensors.cpp and diffusion.cpp, in one run on a machine with a GPU and a
# CUDA build (-DALLM_CUDA=ON; see the README's GPU section):
#   1. parity: every safetensors.cpp architecture and diffusion.cpp's networks on the GPU against
#      the same random-weight fixtures on the CPU (allm-device-tests with ALLM_TEST_DEVICE);
#   2. text: a Llama-3.2-1B-sized random model as a Hugging Face folder (safetensors.cpp) and as
#      its GGUF (llama.cpp), both wholly on the GPU: prefill and decode tokens/s, alternating pairs;
#   3. images: an SD 1.5-sized random checkpoint at 512x512 on the GPU: seconds per step.
# Logs and a summary (gpu_check.json) go to OUT_DIR.
#
# Usage: bench/gpu_check.sh BIN_DIR OUT_DIR [DEVICE (default CUDA0)]
set -uo pipefail
BIN="$(realpath "$1")"
OUT="$(realpath -m "$2")"
DEVICE="${3:-CUDA0}"
WORK="${GPU_CHECK_WORK:-/tmp/allm-gpu-check}"
PAIRS="${GPU_CHECK_PAIRS:-3}"
mkdir -p "$OUT" "$WORK"
cd "$(dirname "$0")/.."

stage() { echo "== $(date -u +%H:%M:%S) $*"; }

stage "GPU"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"

stage "parity: GPU ($DEVICE) vs CPU"
ALLM_TEST_DEVICE="$DEVICE" timeout 300 "$BIN/allm-device-tests" 2>&1 | tee "$OUT/parity.log"

for dtype in bf16 f16; do
  model="$WORK/llama-1b-$dtype"
  stage "text: writing the Llama 1B $dtype model (HF folder + GGUF)"
  [ -f "$model.gguf" ] ||
    "$BIN/allm-make-hf-fixture" --arch llama --dtype "$dtype" --size 1b --out "$model" \
      --gguf "$model.gguf" >/dev/null
  stage "text: safetensors.cpp vs llama.cpp on $DEVICE, $dtype"
  timeout 240 "$BIN/allm-bench-text" --hf "$model" --gguf "$model.gguf" --pairs "$PAIRS" \
    --prompt 512 --decode 128 --device "$DEVICE" --label "llama-1b-$dtype" 2>&1 |
    tee "$OUT/text-$dtype.log"
done

stage "images: SD 1.5-sized, 512x512, on $DEVICE"
timeout 300 "$BIN/allm-bench-sd" "$WORK/sd15" --size 512 --steps 6 --device "$DEVICE" 2>&1 |
  tee "$OUT/sd.log"

stage "summary"
python3 - "$OUT" <<'EOF'
import json, re, statistics, sys, datetime
out = sys.argv[1]
read = lambda name: open(f"{out}/{name}").read()
summary = {"date": datetime.date.today().isoformat(), "gpu": read("gpu.txt").strip()}
parity = read("parity.log")
summary["parity"] = {
    "passed": len(re.findall(r"^\[       OK \]", parity, re.M)),
    "failed": re.findall(r"^\[  FAILED  \] (\S+)", parity, re.M),
    "skipped": len(re.findall(r"^\[  SKIPPED \]", parity, re.M)),
    "max_logprob_diff": {m[0]: float(m[1]) for m in re.findall(
        r"\[ device   \] (\w+): max \|logprob diff\| device vs CPU (\S+)", parity)},
    "image": re.findall(r"diffusion: image device vs CPU, (.*)", parity),
}
pair = re.compile(r"llama\.cpp load (\S+)s prefill (\S+) t/s decode (\S+) t/s.*"
                  r"safetensors\.cpp load (\S+)s prefill (\S+) t/s decode (\S+) t/s")
for dtype in ("bf16", "f16"):
    rows = [[float(x) for x in m] for m in pair.findall(read(f"text-{dtype}.log"))]
    if not rows:
        continue
    med = lambda i: statistics.median(r[i] for r in rows)
    summary[f"text_llama_1b_{dtype}"] = {
        "prompt": 512, "decode": 128, "pairs": len(rows),
        "llama_cpp": {"prefill_tps": med(1), "decode_tps": med(2)},
        "safetensors_cpp": {"prefill_tps": med(4), "decode_tps": med(5)},
        "ratio_prefill": [r[4] / r[1] for r in rows],
        "ratio_decode": [r[5] / r[2] for r in rows],
    }
sd = read("sd.log")
step = re.search(r"seconds per sampling step: (\S+)", sd)
vae = re.search(r"VAE decode: (\S+) s", sd)
summary["sd15_512"] = {"seconds_per_step": float(step[1]) if step else None,
                       "vae_decode_s": float(vae[1]) if vae else None}
json.dump(summary, open(f"{out}/gpu_check.json", "w"), indent=1)
print(json.dumps(summary, indent=1))
EOF
