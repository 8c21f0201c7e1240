"""`python -m weavepcap`: the same as the `weavepcap` command."""

from weavepcap.cli import main

main()
