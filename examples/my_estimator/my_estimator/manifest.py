"""The facts of this package's estimators, read by every archscore process (the API too) through the entry
points of pyproject.toml. Plain data: this module imports nothing, so reading it never loads torch."""

MY_PLAIN = {
    "module": "my_estimator.plain",  # the module whose @register_proxy("my_plain") registers the function
    "needs_data": True,  # it reads the protocol's data batches (False: a function of the network alone)
    "version": "1",  # part of every cache key of its scores: bump it whenever its numbers change
    "unit": "",
    "description": "plain: sum over Conv2d/Linear weights of w * dL/dw, L the cross-entropy of one batch (signed)",
}
