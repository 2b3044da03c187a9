"""``python -m modomodo.cli``: what the training launcher (``rl.distributed``) runs in each rank."""

from modomodo.cli.app import main

main()
