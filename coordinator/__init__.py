"""tasksim's coordinator: the cluster (coordinating node + node processes), the REST API, faults,
scenarios and the testing kit."""

import os

# grpc's C core logs INFO lines (e.g. a GOAWAY at shutdown) unless told otherwise; read at import.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
