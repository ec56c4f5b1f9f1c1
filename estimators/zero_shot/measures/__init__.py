"""The zero-shot proxies published since 2021, one module each (layers, zico, meco, swap, vkdnw, az_nas, zen, epe_nas,
tenas, gradsign).
``proxies`` imports every one of them, so each registers itself whichever module is imported first.
Definitions, papers and the authors' code each follows: docs/concepts/estimators.md."""

from archscore.estimators.zero_shot import proxies
