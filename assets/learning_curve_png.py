#!/usr/bin/env python3
"""Draws `tweetlab learning-curve --out curve.csv` as a PNG for the README, with ImageMagick's
own drawing language (no SVG delegate needed):
    python3 assets/learning_curve_png.py curve.csv assets/learning-curve.png"""
import csv, subprocess, sys

rows = list(csv.DictReader(open(sys.argv[1])))
xs = [int(r["labels"]) for r in rows]
series = [("f1_queue", "#d62728", "active-learning queue (least certain first, near-copies skipped)"),
          ("f1_random", "#1f77b4", "random order")]
W, H, L, R, T, B = 760, 440, 60, 20, 40, 50
ymin, ymax = 0.0, 0.9
X = lambda x: L + (x - xs[0]) / (xs[-1] - xs[0]) * (W - L - R)
Y = lambda y: T + (ymax - y) / (ymax - ymin) * (H - T - B)
mvg = ["font-size 13", "fill black", "stroke none",
       f"text {W/2 - 300},24 'Fast model (frozen MiniLM + logistic regression): held-out F1 vs labels used'"]
for k in range(0, 10):
    y = ymin + k * 0.1
    mvg += [f"stroke '#dddddd' line {L},{Y(y):.1f} {W-R},{Y(y):.1f}", "stroke none",
            f"text {L-30},{Y(y)+4:.1f} '{y:.1f}'"]
for x in range(0, xs[-1] + 1, 200):
    if x >= xs[0]:
        mvg.append(f"text {X(x)-10:.1f},{H-B+18} '{x}'")
mvg += [f"text {(L+W-R)/2 - 45},{H-12} 'labelled tweets'",
        f"stroke black line {L},{T} {L},{H-B}", f"line {L},{H-B} {W-R},{H-B}"]
for i, (key, colour, name) in enumerate(series):
    pts = " ".join(f"{X(x):.1f},{Y(float(r[key])):.1f}" for x, r in zip(xs, rows))
    yl = H - B - 50 + i * 20
    mvg += [f"fill none stroke '{colour}' stroke-width 2 polyline {pts}",
            f"line {W-490},{yl} {W-465},{yl}", "stroke none fill black stroke-width 1",
            f"text {W-460},{yl+4} '{name}'"]
subprocess.run(["convert", "-size", f"{W}x{H}", "xc:white", "-font", "DejaVu-Sans", "-draw", "\n".join(mvg), sys.argv[2]],
               check=True)
