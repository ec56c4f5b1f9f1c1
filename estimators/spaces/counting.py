"""The FLOP-counting convention shared by every space's cost model and ``archscore.estimators.zero_shot.flops``:
BatchNorm costs 2 FLOPs per output element and ReLU 1 (NAS-Bench-201's cost column and the
NAS-Bench-Suite-Zero columns agree on these)."""

FLOPS_BN_PER_ELEMENT = 2
FLOPS_RELU_PER_ELEMENT = 1
