"""Probe (issue 14, item 4): can a network trained from scratch on 100% of the labels read the pose from the pixels?

Trains a ResNet-18 (the house backbone) + an MLP head end to end on every
labelled training frame of a rendered benchmark dataset — pelvis-centred 3D
(z-scored), MSE, AdamW 1e-3 with cosine decay to 1%, batch 32, colour jitter
0.3, bf16 only where the CPU has it (``--autocast auto``), one thread — and every ``--eval-every`` steps prints N-MPJPE (mm)
on 2000 frames of the held-out training person (``val_n``: selection would use
this) and, as a *diagnostic only*, on a fixed 2000-frame subset of the test
people (``test_n``), with:

* ``test_amb``: the error when the facing ambiguity of a left/right-symmetric
  body is forgiven (per frame, the smaller of the errors against the truth and
  against the truth mirrored in depth with left and right swapped), and
  ``test_mirror_closer``: how often the mirrored truth is the closer one.

Options: ``--crop true`` (square crop of side ``--margin`` × the true box's
longer side), ``detector`` (a detector learnt end to end, as the house
reference) or ``full`` (the whole frame); ``--crop-size``; ``--stages`` (3 stops
before the last residual stage); ``--pool avg|flat`` (flat keeps the spatial map);
``--aug chan,flip,box`` (colour-channel shuffle, mirror with the labels
mirrored, ±5% box jitter).

    PYTHONPATH=src python benchmarks/supervised_profile_probe.py out/shortcut_check/data/train \
        out/shortcut_check/data/test out/probe_avgT.json --crop true --pool avg --steps 3000

(the data: ``selfpose benchmark --config configs/benchmark_shortcut_check_cpu.yaml --work out/shortcut_check``).
"""
import argparse, json, time
import numpy as np, torch, torch.nn.functional as F
from torch import nn
from selfpose.data.store import Dataset
from selfpose.pose.features import read_arrays, frames_to_tensor
from selfpose.pose.labels import label_subset, split_validation
from selfpose.models.backbones import resnet
from selfpose.models.stn import crop, box_px_to_theta
from selfpose.models.detector import Detector
from selfpose.evaluation.metrics import n_mpjpe, mpjpe
from selfpose.pose.supervised import colour_jitter

p = argparse.ArgumentParser()
p.add_argument("train"); p.add_argument("test"); p.add_argument("out")
p.add_argument("--crop", default="true"); p.add_argument("--crop-size", type=int, default=64)
p.add_argument("--pool", default="avg"); p.add_argument("--width", type=int, default=32)
p.add_argument("--steps", type=int, default=2000); p.add_argument("--bs", type=int, default=32)
p.add_argument("--lr", type=float, default=1e-3); p.add_argument("--eval-every", type=int, default=500)
p.add_argument("--margin", type=float, default=1.25); p.add_argument("--stages", type=int, default=4)
p.add_argument("--aug", default="")  # comma list: chan (channel shuffle), flip (mirror + label flip), box (box jitter)
p.add_argument("--max-seconds", type=float, default=1e9); p.add_argument("--autocast", default="auto")  # true | false | auto (bf16 only where the CPU has it)
a = p.parse_args()
torch.set_num_threads(1); torch.manual_seed(0)
tr_ds, te_ds = Dataset.open(a.train), Dataset.open(a.test)
lab = label_subset(tr_ds, 1.0, seed=0)
tr, va = split_validation(tr_ds, lab, 0.1, "subject", 0)
rng = np.random.default_rng(0)
te_all = label_subset(te_ds, 1.0, finite_only=False)
te = te_all[np.sort(rng.choice(len(te_all), 2000, replace=False))]
va = va[np.sort(rng.choice(len(va), min(2000, len(va)), replace=False))]

def targets(ds, f):
    j = read_arrays(ds, f, ("joints3d",))["joints3d"].astype(np.float32)
    return j - j[:, :1]
ytr = targets(tr_ds, tr); J = ytr.shape[1]
from selfpose.lifting.flip import flip_permutation
PERM = flip_permutation(J)
mu, sd = ytr.reshape(len(tr), -1).mean(0), ytr.reshape(len(tr), -1).std(0) + 1e-6
mu_t, sd_t = torch.from_numpy(mu), torch.from_numpy(sd)

class Net(nn.Module):
    def __init__(s):
        super().__init__()
        layers = (2, 2, 2, 2)[:a.stages]
        s.bb = resnet("resnet18", width=a.width, layers=layers, num_classes=None)
        c = s.bb.out_channels
        side = a.crop_size // 2 ** (len(layers) + 1)
        s.det = Detector("resnet18", 16, 64, 0.1, 1.0, 0.5, True) if a.crop == "detector" else None
        d = c * side * side if a.pool == "flat" else c
        s.head = nn.Sequential(nn.Linear(d, 1024), nn.BatchNorm1d(1024), nn.ReLU(), nn.Dropout(0.25),
                               nn.Linear(1024, 3 * J))
    def forward(s, frames, boxes):
        H, W = frames.shape[-2:]
        if a.crop == "true":
            th = box_px_to_theta(boxes, W, H)
            side = torch.maximum(th[:, 0] * W, th[:, 1] * H) * a.margin
            th = torch.stack([side / W, side / H, th[:, 2], th[:, 3]], 1)
        elif a.crop == "detector":
            th = s.det(frames)
            side = torch.maximum(th[:, 0] * W, th[:, 1] * H) * a.margin
            th = torch.stack([side / W, side / H, th[:, 2], th[:, 3]], 1)
        else:
            th = torch.tensor([[1.0, 1.0, 0.0, 0.0]]).expand(len(frames), 4)
        x = crop(frames, th, a.crop_size)
        f = s.bb.features(x)[-1]
        f = f.flatten(1) if a.pool == "flat" else f.mean((2, 3))
        return s.head(f)

net = Net()
opt = torch.optim.AdamW(net.parameters(), lr=a.lr, weight_decay=1e-4)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * min(s, a.steps) / a.steps)))
from selfpose.training.precision import bf16_autocast
flag = a.autocast if a.autocast == "auto" else a.autocast.lower() in ("1", "true")
amp = lambda: bf16_autocast(flag)
gen = torch.Generator().manual_seed(0)

def batch(ds, f):
    r = read_arrays(ds, f, ("frames", "boxes"))
    return frames_to_tensor(r["frames"]), torch.from_numpy(r["boxes"].astype(np.float32))

def score(ds, f):
    net.eval(); out = []
    with torch.no_grad(), amp():
        for k in range(0, len(f), 128):
            fr, bx = batch(ds, f[k:k + 128])
            out.append(net(fr, bx).float())
    net.train()
    pred = (torch.cat(out) * sd_t + mu_t).numpy().reshape(len(f), J, 3)
    y = targets(ds, f)
    # the facing ambiguity of symmetric bodies: depth mirrored (Z -> -Z about the pelvis) + left/right swapped
    ym = y[:, PERM] * np.array([1, 1, -1], np.float32)
    e1 = np.array([float(n_mpjpe(pred[i:i+1], y[i:i+1])) for i in range(len(f))])
    e2 = np.array([float(n_mpjpe(pred[i:i+1], ym[i:i+1])) for i in range(len(f))])
    return float(n_mpjpe(pred, y)), float(mpjpe(pred, y)), float(np.minimum(e1, e2).mean()), float((e2 < e1).mean())

log = []; t0 = time.time(); lsum = 0
for step in range(1, a.steps + 1):
    rows = torch.randint(len(tr), (a.bs,), generator=gen).numpy()
    rows.sort()
    fr, bx = batch(tr_ds, tr[rows])
    fr = colour_jitter(fr, 0.3, gen)
    yj = ytr[rows].copy()
    augs = a.aug.split(",")
    if "chan" in augs:
        perm = torch.stack([torch.randperm(3, generator=gen) for _ in range(a.bs)])
        fr = torch.stack([fr[i, perm[i]] for i in range(a.bs)])
    if "box" in augs:
        w = (bx[:, 2] - bx[:, 0]).unsqueeze(1); h = (bx[:, 3] - bx[:, 1]).unsqueeze(1)
        sz = torch.maximum(w, h)
        bx = bx + (torch.rand(a.bs, 4, generator=gen) - 0.5) * 0.1 * sz
    if "flip" in augs:
        m = torch.rand(a.bs, generator=gen) < 0.5
        W = fr.shape[-1]
        fr[m] = fr[m].flip(-1)
        bx2 = bx.clone(); bx2[:, 0] = W - bx[:, 2]; bx2[:, 2] = W - bx[:, 0]
        bx = torch.where(m[:, None], bx2, bx)
        mm = m.numpy()
        yj[mm] = yj[mm][:, PERM] * np.array([-1, 1, 1], np.float32)
    y = (torch.from_numpy(yj.reshape(a.bs, -1)) - mu_t) / sd_t
    with amp():
        pred = net(fr, bx)
    loss = F.mse_loss(pred.float(), y)
    opt.zero_grad(); loss.backward(); opt.step(); sched.step()
    lsum += loss.item()
    if step % a.eval_every == 0 or step == a.steps or time.time() - t0 > a.max_seconds:
        v = score(tr_ds, va); t = score(te_ds, te)
        row = dict(step=step, loss=lsum / a.eval_every, val_n=v[0], test_n=t[0], test_mpjpe=t[1], test_amb=t[2], test_mirror_closer=t[3], s=round(time.time() - t0))
        lsum = 0; log.append(row); print(json.dumps(row), flush=True)
        if time.time() - t0 > a.max_seconds:
            break
json.dump({"args": vars(a), "log": log}, open(a.out, "w"), indent=1)
