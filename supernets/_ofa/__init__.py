"""Once-for-All supernet (private implementation; public names re-exported by ``supernets``)."""
