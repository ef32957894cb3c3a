"""tasksim's simulated node: a task registry owned by a trio loop, served over gRPC.

The pure core (taskid, errors, regex, discovery, registry) imports neither trio nor grpc; the
I/O layers (node, server, transport) only carry what the core decides.
"""
