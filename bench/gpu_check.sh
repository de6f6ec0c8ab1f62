#!/usr/bin/env bash
# The GPU checks of safetensors.cpp and diffusion.cpp, in one run on a machine with a GPU and a
# CUDA build (-DALLM_CUDA=ON; see the README's GPU section):
#   1. parity: every safetensors.cpp architecture and diffusion.cpp's networks on the GPU against
#      the same random-weight fixtures on the CPU (allm-device-tests with ALLM_TEST_DEVICE);
#   2. text: a Llama-3.2-1B-sized random model as a Hugging Face folder (safetensors.cpp) and as
#      its GGUF (llama.cpp), both wholly on the GPU: prefill and decode tokens/s, alternating pairs;
#   3. images: an SD 1.5-sized random checkpoint at 512x512 on the GPU: seconds per step;
#   4. the server (when BIN_DIR has allm): the Hugging Face folder and its GGUF served on the GPU,
#      one chat completion each; the load log lines say where the models went.
# A log per stage and a summary (gpu_check.json) go to OUT_DIR.
#
# Usage: bench/gpu_check.sh BIN_DIR OUT_DIR [DEVICE (default CUDA0)]
set -uo pipefail
BIN="$(realpath "$1")"
OUT="$(realpath -m "$2")"
DEVICE="${3:-CUDA0}"
WORK="${GPU_CHECK_WORK:-/tmp/allm-gpu-check}"
PAIRS="${GPU_CHECK_PAIRS:-3}"
TEXT_SIZE="${GPU_CHECK_TEXT_SIZE:-1b}"  # tiny: a quick run of the script itself
SD_SIZE="${GPU_CHECK_SD_SIZE:-512}"
mkdir -p "$OUT" "$WORK"
cd "$(dirname "$0")/.."

stage() { echo "== $(date -u +%H:%M:%S) $*"; }

stage "GPU"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"

stage "parity: GPU ($DEVICE) vs CPU"
ALLM_TEST_DEVICE="$DEVICE" timeout 300 "$BIN/allm-device-tests" 2>&1 | tee "$OUT/parity.log"

for dtype in ${GPU_CHECK_DTYPES:-bf16}; do
  model="$WORK/llama-$TEXT_SIZE-$dtype"
  stage "text: writing the Llama 1B $dtype model (HF folder + GGUF)"
  [ -f "$model.gguf" ] ||
    "$BIN/allm-make-hf-fixture" --arch llama --dtype "$dtype" --size "$TEXT_SIZE" --out "$model" \
      --gguf "$model.gguf" >/dev/null
  stage "text: safetensors.cpp vs llama.cpp on $DEVICE, $dtype"
  timeout 240 "$BIN/allm-bench-text" --hf "$model" --gguf "$model.gguf" --pairs "$PAIRS" \
    --prompt 512 --decode 128 --device "$DEVICE" --label "llama-$TEXT_SIZE-$dtype" 2>&1 |
    tee "$OUT/text-$dtype.log"
done

stage "images: SD 1.5-sized, ${SD_SIZE}x$SD_SIZE, on $DEVICE"
timeout 300 "$BIN/allm-bench-sd" "$WORK/sd15" --size "$SD_SIZE" --steps 6 --device "$DEVICE" 2>&1 |
  tee "$OUT/sd.log"

if [ -x "$BIN/allm" ]; then
  stage "server: allm serve on $DEVICE"
  model="$WORK/llama-$TEXT_SIZE-bf16"
  "$BIN/allm" serve --port 18734 --device "$DEVICE" --data-dir "$WORK/data" \
    --model "hf=$model" --model "gguf=$model.gguf" >"$OUT/server.log" 2>&1 &
  server=$!
  timeout 240 python3 - <<'EOF' 2>&1 | tee "$OUT/server-requests.log"
import json, time, urllib.request
base = "http://127.0.0.1:18734"
for _ in range(120):
    try:
        urllib.request.urlopen(base + "/health", timeout=1)
        break
    except Exception:
        time.sleep(0.5)
for model in ("hf", "gguf"):
    body = {"model": model, "messages": [{"role": "user", "content": "Hello"}],
            "max_tokens": 16, "temperature": 0}
    request = urllib.request.Request(base + "/v1/chat/completions", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    answer = json.load(urllib.request.urlopen(request, timeout=120))
    print(model, answer["usage"], answer["choices"][0]["finish_reason"])
EOF
  kill "$server"
  wait "$server"
  grep -a "loaded" "$OUT/server.log" | tee "$OUT/server-placement.log"
fi

stage "summary"
python3 - "$OUT" "$TEXT_SIZE" "$SD_SIZE" <<'EOF'
import json, re, statistics, sys, datetime
out, text_size, sd_size = sys.argv[1:4]
read = lambda name: open(f"{out}/{name}").read()
summary = {"date": datetime.date.today().isoformat(), "gpu": read("gpu.txt").strip()}
parity = read("parity.log")
summary["parity"] = {
    "passed": len(re.findall(r"^\[       OK \]", parity, re.M)),
    "failed": sorted(set(re.findall(r"^\[  FAILED  \] ([A-Za-z][\w/.]*)[ ,]", parity, re.M))),
    "skipped": len(re.findall(r"^\[  SKIPPED \]", parity, re.M)),
    "max_logprob_diff": {m[0]: float(m[1]) for m in re.findall(
        r"\[ device   \] (\w+): max \|logprob diff\| device vs CPU (\S+)", parity)},
    "image": re.findall(r"diffusion: image device vs CPU, (.*)", parity),
}
pair = re.compile(r"llama\.cpp load (\S+)s prefill (\S+) t/s decode (\S+) t/s.*"
                  r"safetensors\.cpp load (\S+)s prefill (\S+) t/s decode (\S+) t/s")
for dtype in ("bf16", "f16"):
    try:
        rows = [[float(x) for x in m] for m in pair.findall(read(f"text-{dtype}.log"))]
    except FileNotFoundError:
        continue
    if not rows:
        continue
    med = lambda i: statistics.median(r[i] for r in rows)
    summary[f"text_llama_{text_size}_{dtype}"] = {
        "prompt": 512, "decode": 128, "pairs": len(rows),
        "llama_cpp": {"prefill_tps": med(1), "decode_tps": med(2)},
        "safetensors_cpp": {"prefill_tps": med(4), "decode_tps": med(5)},
        "ratio_prefill": [r[4] / r[1] for r in rows],
        "ratio_decode": [r[5] / r[2] for r in rows],
    }
sd = read("sd.log")
step = re.search(r"seconds per sampling step: (\S+)", sd)
vae = re.search(r"VAE decode: (\S+) s", sd)
summary[f"sd15_{sd_size}"] = {"seconds_per_step": float(step[1]) if step else None,
                       "vae_decode_s": float(vae[1]) if vae else None}
for name in ("server-requests", "server-placement"):
    try:
        summary[name.replace("-", "_")] = read(f"{name}.log").strip().splitlines()
    except FileNotFoundError:
        pass
json.dump(summary, open(f"{out}/gpu_check.json", "w"), indent=1)
print(json.dumps(summary, indent=1))
EOF
rm -f "$OUT/gpu.txt" "$OUT/server-requests.log" "$OUT/server-placement.log"  # in the summary
