"""float32 vs bf16 autocast on this CPU: why every bf16 switch defaults to ``auto``.

On a CPU with native bf16 (AMX / AVX512-BF16) autocast speeds up the
convolutions and LSTMs; on one without (e.g. an AVX2-only AMD EPYC) oneDNN
emulates bf16 and the same step runs many times slower — or refuses the LSTM.
This prints, with one torch thread, the training-step time of the encoder
ResNet (the CPU profile's ResNet-18, width 32, 32 crops) at two crop sizes
with and without channels-last, and of one LSTM layer of the pose machine's
width, in both precisions.

    python benchmarks/bench_precision.py [--lstm-hidden 1024] [--repeats 4]
"""

from __future__ import annotations

import argparse
import time

import torch


def _best(fn, repeats: int) -> float:
    fn()   # warm-up: oneDNN builds its kernels on the first call
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def conv_step(size: int, bf16: bool, channels_last: bool, repeats: int) -> float:
    from selfpose.models.backbones import resnet

    net = resnet("resnet18", width=32, num_classes=None)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters())
    x = torch.rand(32, 3, size, size)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            y = net.features(x)[-1].mean((2, 3))
        y.float().pow(2).mean().backward()
        opt.step()
        opt.zero_grad()
    return _best(step, repeats)


def lstm_step(hidden: int, bf16: bool, repeats: int) -> float | str:
    lstm = torch.nn.LSTM(hidden, hidden, batch_first=True)
    x = torch.rand(16, 32, hidden)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            y, _ = lstm(x)
        y.float().sum().backward()
    try:
        return _best(step, repeats)
    except RuntimeError as e:   # oneDNN has no bf16 LSTM primitive for this CPU/size
        return f"refused ({str(e).splitlines()[0][:60]}...)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lstm-hidden", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=4)
    a = ap.parse_args()
    from selfpose.training.precision import bf16_supported, cpu_name

    torch.set_num_threads(1)
    print(f"CPU: {cpu_name()}; native bf16: {bf16_supported()}; torch {torch.__version__}, 1 thread")
    for size in (64, 96):
        for cl in (False, True):
            f32, b16 = (conv_step(size, b, cl, a.repeats) for b in (False, True))
            print(f"ResNet-18 w32 step, 32 crops of {size} px{' channels-last' if cl else ''}: "
                  f"fp32 {f32:.3f} s, bf16 {b16:.3f} s ({b16 / f32:.1f}x)")
    f32, b16 = (lstm_step(a.lstm_hidden, b, a.repeats) for b in (False, True))
    fmt = lambda v: f"{v:.3f} s" if isinstance(v, float) else v   # noqa: E731
    print(f"LSTM {a.lstm_hidden} wide, 16 clips x 32 frames, forward + backward: fp32 {fmt(f32)}, bf16 {fmt(b16)}")


if __name__ == "__main__":
    main()
