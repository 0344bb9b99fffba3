"""The pass-through proxy: routing, the upstream transport, forwarding with a stream tee."""
