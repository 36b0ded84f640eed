"""PyTorch reference for `npm run bench`: the Part B class-conditioned UNet (SPEC §2.1–2.5), timed
the same way as the TF.js side (batch B, warm-up excluded, median of several steps).

Prints one JSON object per D and variant on stdout:
{"D":..,"batch":..,"variant":..,"train_img_s":..,"infer_img_s":..}. Variants (VARIANTS): eager fp32;
channels_last (NHWC); torch.compile on channels_last; bf16 autocast on channels_last (fp32 master
weights and loss), skipped with a "skipped" reason on a CPU without bf16.
This file is the only copy of the reference network; it exists for the benchmark alone.
"""
import json
import os
import statistics
import sys
import time

ARGS = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
# torch.compile's kernel cache beside this PyTorch (a cache another PyTorch build filled can hold
# kernels that do not load here); set before torch is imported.
if "inductor_cache" in ARGS:
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", ARGS["inductor_cache"])

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def conv(ci, co):
    return nn.Sequential(nn.Conv2d(ci, co, 3, 1, 1), nn.BatchNorm2d(co), nn.GELU())


def down_conv(ci, co):
    return nn.Sequential(nn.Conv2d(ci, co, 3, 2, 1), nn.BatchNorm2d(co), nn.GELU())


def up_conv(ci, co):
    return nn.Sequential(nn.ConvTranspose2d(ci, co, 4, 2, 1), nn.BatchNorm2d(co), nn.GELU())


def conv_block(ci, co):
    return nn.Sequential(conv(ci, co), conv(co, co))


def fc_block(fi, fo):
    return nn.Sequential(nn.Linear(fi, fo), nn.GELU(), nn.Linear(fo, fo))


class ClassConditionalUNet(nn.Module):
    def __init__(self, D, num_classes=10):
        super().__init__()
        self.e1 = conv_block(1, D)
        self.e2 = nn.Sequential(down_conv(D, D), conv_block(D, D))
        self.e3 = nn.Sequential(down_conv(D, 2 * D), conv_block(2 * D, 2 * D))
        self.unflatten = nn.Sequential(nn.ConvTranspose2d(2 * D, 2 * D, 7, 7, 0), nn.BatchNorm2d(2 * D), nn.GELU())
        self.u1 = nn.Sequential(up_conv(4 * D, D), conv_block(D, D))
        self.u2 = nn.Sequential(up_conv(2 * D, D), conv_block(D, D))
        self.out_block = conv_block(2 * D, D)
        self.out = nn.Conv2d(D, 1, 3, 1, 1)
        self.fc1_t, self.fc2_t = fc_block(1, 2 * D), fc_block(1, D)
        self.fc1_c, self.fc2_c = fc_block(num_classes, 2 * D), fc_block(num_classes, D)

    def forward(self, x, c, t):
        e1 = self.e1(x)
        e2 = self.e2(e1)
        e3 = self.e3(e2)
        flat = F.gelu(F.avg_pool2d(e3, 7))
        t1, t2 = self.fc1_t(t)[..., None, None], self.fc2_t(t)[..., None, None]
        c1, c2 = self.fc1_c(c)[..., None, None], self.fc2_c(c)[..., None, None]
        u0 = c1 * self.unflatten(flat) + t1
        u1 = c2 * self.u1(torch.cat([e3, u0], 1)) + t2
        u2 = self.u2(torch.cat([e2, u1], 1))
        return self.out(self.out_block(torch.cat([e1, u2], 1)))


def median_time(fn, warmup, steps):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


VARIANTS = ("eager", "channels_last", "compile", "bf16")


def make_steps(model, opt, x, c, t, eps, variant):
    """The training step and the inference pass of one variant (see VARIANTS)."""
    if variant in ("channels_last", "compile", "bf16"):
        # NHWC activations and weights, the layout oneDNN's kernels prefer (as ours do).
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
        eps = eps.contiguous(memory_format=torch.channels_last)
    fwd = torch.compile(model) if variant == "compile" else model
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=variant == "bf16")

    def train_step():
        model.train()
        opt.zero_grad()
        with autocast:
            out = fwd(x, c, t)
        # The loss in fp32 (autocast's output is bf16), as mixed-precision training does.
        loss = F.mse_loss(out.float(), eps)
        loss.backward()
        opt.step()

    def infer_step():
        model.eval()
        with torch.no_grad(), autocast:
            fwd(x, c, t).float()

    return train_step, infer_step


def main():
    args = ARGS
    threads = int(args.get("threads", 2))
    torch.set_num_threads(threads)
    batch = int(args.get("batch", 64))
    variants = args.get("variants", ["eager"])
    bf16_ok = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    for D in args.get("D", [32, 64]):
        for variant in variants:
            if variant not in VARIANTS:
                raise SystemExit(f"unknown variant {variant!r}: one of {', '.join(VARIANTS)}")
            if variant == "bf16" and not bf16_ok:
                print(json.dumps({"D": D, "variant": variant, "skipped": "this CPU has no bf16 support"}), flush=True)
                continue
            torch.manual_seed(0)
            model = ClassConditionalUNet(D)
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            x = torch.rand(batch, 1, 28, 28)
            c = F.one_hot(torch.randint(0, 10, (batch,)), 10).float()
            t = torch.rand(batch, 1)
            eps = torch.randn(batch, 1, 28, 28)
            train_step, infer_step = make_steps(model, opt, x, c, t, eps, variant)
            # torch.compile traces and compiles on its first calls: more warm-up for it.
            warmup = int(args.get("warmup", 2)) + (3 if variant == "compile" else 0)
            tr = median_time(train_step, warmup, int(args.get("steps", 5)))
            inf = median_time(infer_step, warmup, int(args.get("steps", 5)))
            out = {"D": D, "batch": batch, "variant": variant, "train_img_s": batch / tr, "infer_img_s": batch / inf}
            print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
