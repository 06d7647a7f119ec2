"""Real servers on loopback for a machine without Docker: etcd + kube-apiserver, git, registry v2.

The `local` stack runs them as detached processes that outlive `pulumi up`; the test fixtures run
the same code attached to the test session. Nothing here fakes a server: each module starts the
real binary from the pinned toolchain and waits until it answers.
"""
