"""Exception classes of the libraries jobs run with, as each library's source or docs define them.

Also the module-qualified names that override a bare name (QUALIFIED, for any client:
SQLAlchemy, Kafka, Flink, Spark, google-auth, sqlite3) and the messages libraries and engines
print under a generic class (MESSAGES).

A class that subclasses a Python builtin is read through that builtin (BASES), so it lands
where Python's own hierarchy puts its base; a class of its own (or one whose base misleads)
names its family directly (FAMILIES). Sources: pandas/errors/__init__.py, pyarrow/error.pxi,
numpy.exceptions and numpy/_core/_exceptions.py, polars' exceptions reference
(docs.pola.rs/api/python/stable/reference/exceptions.html), duckdb's Python exceptions,
sqlalchemy/exc.py, pydantic/errors.py, and PyTorch's CUDA semantics notes
(pytorch.org/docs/stable/notes/cuda.html).
"""

from __future__ import annotations

BASES: dict[str, str] = {
    # pandas.errors
    "IntCastingNaNError": "ValueError",  # NaN or inf cast to an integer dtype
    "NullFrequencyError": "ValueError",
    "DuplicateLabelError": "ValueError",
    "OutOfBoundsTimedelta": "ValueError",
    "AbstractMethodError": "NotImplementedError",
    "NumExprClobberingError": "NameError",
    "UndefinedVariableError": "NameError",  # query()/eval() names an undefined variable
    "OptionError": "AttributeError",  # an unknown pandas option
    # pyarrow.lib
    "ArrowIndexError": "IndexError",
    # numpy
    "DTypePromotionError": "TypeError",
    "LinAlgError": "ValueError",  # a singular or non-converging input matrix
    "_UFuncNoLoopError": "TypeError",
    "_UFuncCastingError": "TypeError",
    "_UFuncInputCastingError": "TypeError",
    "_UFuncOutputCastingError": "TypeError",
    "_UFuncBinaryResolutionError": "TypeError",
    # pydantic
    "PydanticImportError": "ImportError",  # a name moved to another package (pydantic-settings)
}
"""Library classes by the builtin they subclass in the library's own source."""

FAMILIES: dict[str, str] = {
    # data parsing and validation (json, pandas, pyarrow, numpy, yaml, pydantic, csv)
    "JSONDecodeError": "INVALID_DATA",
    "ParserError": "INVALID_DATA",
    "ParseError": "INVALID_DATA",
    "EmptyDataError": "INVALID_DATA",
    "MergeError": "INVALID_DATA",
    "OutOfBoundsDatetime": "INVALID_DATA",
    "ArrowInvalid": "INVALID_DATA",
    "ArrowTypeError": "INVALID_DATA",
    "ArrowKeyError": "INVALID_DATA",
    "ArrowMemoryError": "OUT_OF_MEMORY",
    "ArrowNotImplementedError": "CODE_DEFECT",
    "AxisError": "CODE_DEFECT",
    "UFuncTypeError": "CODE_DEFECT",
    "_ArrayMemoryError": "OUT_OF_MEMORY",
    "YAMLError": "INVALID_DATA",
    "ScannerError": "INVALID_DATA",
    "ComposerError": "INVALID_DATA",
    "ValidationError": "INVALID_DATA",
    "SchemaError": "INVALID_DATA",
    # PEP 249 (DB-API 2.0) classes, which every Python database driver raises
    "IntegrityError": "INVALID_DATA",
    "DataError": "INVALID_DATA",
    # DuckDB's Python exceptions, by the DB-API class and error type its docs give them
    "CatalogException": "MISSING_RESOURCE",
    "BinderException": "CODE_DEFECT",
    "ParserException": "CODE_DEFECT",
    "SyntaxException": "CODE_DEFECT",
    "ConversionException": "INVALID_DATA",
    "ConstraintException": "INVALID_DATA",
    "InvalidInputException": "INVALID_DATA",
    "OutOfRangeException": "INVALID_DATA",
    "OutOfMemoryException": "OUT_OF_MEMORY",
    "PermissionException": "PERMISSION_DENIED",
    "TransactionException": "TRANSACTION_CONFLICT",
    "NotImplementedException": "CODE_DEFECT",
    # HTTP clients (requests, urllib3, httpx, aiohttp, http.client)
    "ConnectTimeout": "CONNECT_TIMEOUT",
    "ReadTimeout": "NETWORK_TIMEOUT",
    "ConnectTimeoutError": "CONNECT_TIMEOUT",
    "ReadTimeoutError": "NETWORK_TIMEOUT",
    "PoolTimeout": "NETWORK_TIMEOUT",
    "NewConnectionError": "CONNECTION_FAILED",
    "ProtocolError": "CONNECTION_FAILED",
    "RemoteDisconnected": "CONNECTION_FAILED",
    "RemoteProtocolError": "CONNECTION_FAILED",
    "ConnectError": "CONNECTION_FAILED",
    "ServerDisconnectedError": "CONNECTION_FAILED",
    "ClientConnectorError": "CONNECTION_FAILED",
    "ChunkedEncodingError": "CONNECTION_FAILED",
    "IncompleteRead": "CONNECTION_FAILED",
    "EndpointConnectionError": "CONNECTION_FAILED",
    "NameResolutionError": "NAME_RESOLUTION_FAILED",
    # botocore
    "NoCredentialsError": "MISSING_CREDENTIALS",
    "PartialCredentialsError": "MISSING_CREDENTIALS",
    "ParamValidationError": "INVALID_REQUEST",
    "NoRegionError": "INVALID_REQUEST",
    "ProfileNotFound": "INVALID_REQUEST",
    "SSLCertVerificationError": "INVALID_REQUEST",
    # google.api_core.exceptions (BigQuery, GCS), named after HTTP/gRPC statuses
    "NotFound": "MISSING_RESOURCE",
    "Forbidden": "PERMISSION_DENIED",
    "Unauthorized": "AUTHENTICATION_FAILED",
    "Unauthenticated": "AUTHENTICATION_FAILED",
    "BadRequest": "INVALID_REQUEST",
    "TooManyRequests": "RATE_LIMITED",
    "ResourceExhausted": "RATE_LIMITED",
    "ServiceUnavailable": "SERVICE_UNAVAILABLE",
    "InternalServerError": "SERVICE_UNAVAILABLE",
    # process and orchestration libraries
    "TimeoutExpired": "DEADLINE_EXCEEDED",
    "AirflowTaskTimeout": "DEADLINE_EXCEEDED",
    "AirflowSensorTimeout": "DEADLINE_EXCEEDED",
    "AirflowNotFoundException": "MISSING_RESOURCE",
    "NoSuchTableError": "MISSING_RESOURCE",
    "NoSuchModuleError": "MISSING_MODULE",
    # pandas.errors classes of their own, and ValueError subclasses that are the caller's bug
    "SpecificationError": "CODE_DEFECT",  # agg() functions ill-specified
    "IndexingError": "CODE_DEFECT",  # an indexer that does not fit the frame
    "SettingWithCopyError": "CODE_DEFECT",
    "UnsortedIndexError": "CODE_DEFECT",  # a MultiIndex sliced before it was sorted
    "NumbaUtilError": "CODE_DEFECT",
    "ClosedFileError": "CODE_DEFECT",
    "PossibleDataLossError": "CODE_DEFECT",
    # pyarrow: more than a 32-bit offset array can hold
    "ArrowCapacityError": "INVALID_DATA",
    # polars.exceptions (all subclass PolarsError)
    "ColumnNotFoundError": "MISSING_RESOURCE",
    "SchemaFieldNotFoundError": "MISSING_RESOURCE",
    "StructFieldNotFoundError": "MISSING_RESOURCE",
    "DuplicateError": "INVALID_DATA",  # a duplicated column name
    "NoDataError": "INVALID_DATA",  # an empty data structure or file
    "ShapeError": "INVALID_DATA",
    "OutOfBoundsError": "INVALID_DATA",  # an index out of bounds, as Python's IndexError
    "NoRowsReturnedError": "INVALID_DATA",
    "TooManyRowsReturnedError": "INVALID_DATA",
    "InvalidOperationError": "CODE_DEFECT",  # an operation the dtype or structure forbids
    "StringCacheMismatchError": "CODE_DEFECT",
    "ParameterCollisionError": "CODE_DEFECT",
    "SQLSyntaxError": "CODE_DEFECT",
    "PanicException": "CODE_DEFECT",  # a panic in the Rust library
    "PolarsPanicError": "CODE_DEFECT",
    "ModuleUpgradeRequiredError": "MISSING_MODULE",  # an installed module is too old
    # duckdb (the DB-API class each subclasses, and its error type)
    "TypeMismatchException": "INVALID_DATA",  # a DataError
    "InvalidTypeException": "CODE_DEFECT",  # a ProgrammingError
    "DependencyException": "INVALID_REQUEST",  # an object others depend on
    # sqlalchemy.exc
    "CompileError": "CODE_DEFECT",
    "UnsupportedCompilationError": "CODE_DEFECT",
    "PendingRollbackError": "CODE_DEFECT",  # the session was not rolled back after a failure
    "ResourceClosedError": "CODE_DEFECT",
    "NoForeignKeysError": "CODE_DEFECT",
    "AmbiguousForeignKeysError": "CODE_DEFECT",
    "NoReferencedTableError": "MISSING_RESOURCE",
    "NoReferencedColumnError": "MISSING_RESOURCE",
    "NoSuchColumnError": "MISSING_RESOURCE",
    "NoResultFound": "INVALID_DATA",  # one row was required and none came
    "MultipleResultsFound": "INVALID_DATA",
    # pydantic: the model definition is wrong, not the data
    "PydanticUserError": "CODE_DEFECT",
    "PydanticSchemaGenerationError": "CODE_DEFECT",
}
"""Library classes that name their family directly."""

QUALIFIED: dict[str, str | None] = {
    # SQLAlchemy's pool timeout is not a network timeout: every pooled connection is in use
    "sqlalchemy.exc.TimeoutError": "CONNECTIONS_EXHAUSTED",
    "psycopg2.pool.PoolError": "CONNECTIONS_EXHAUSTED",  # the client pool has no free connection
    # PyTorch's allocator: the GPU's memory, which the job's memory limit does not size
    "torch.OutOfMemoryError": "GPU_OUT_OF_MEMORY",
    "torch.cuda.OutOfMemoryError": "GPU_OUT_OF_MEMORY",
    # the API used wrongly (elsewhere these names are a service rejecting a request)
    "sqlalchemy.exc.InvalidRequestError": "CODE_DEFECT",
    "sqlalchemy.exc.ArgumentError": "CODE_DEFECT",
    # google-auth: a token refresh the server refused, and the transport under it
    "google.auth.exceptions.RefreshError": "AUTHENTICATION_FAILED",
    "google.auth.exceptions.TransportError": "CONNECTION_FAILED",
    # Spark's SQL parser: a syntax error in the query, not malformed input data
    "org.apache.spark.sql.catalyst.parser.ParseException": "CODE_DEFECT",
    "pyspark.sql.utils.ParseException": "CODE_DEFECT",
    "pyspark.errors.exceptions.captured.ParseException": "CODE_DEFECT",
    # sqlite3's OperationalError is SQLite's, never a network's: its message decides
    "sqlite3.OperationalError": None,
    # Kafka Connect's base class, not java.net's refused connection: its message decides
    "org.apache.kafka.connect.errors.ConnectException": None,
    # Flink's lost TaskManager connection (Elasticsearch's class of that name is a wrapper)
    "org.apache.flink.runtime.io.network.netty.exception.RemoteTransportException": (
        "CONNECTION_FAILED"
    ),
}
"""Module-qualified classes whose bare name means something else elsewhere (None: a generic
class there, which names no family)."""

MESSAGES: dict[str, str] = {
    # PyTorch's allocator and the CUDA runtime, under a bare RuntimeError
    "CUDA out of memory": "GPU_OUT_OF_MEMORY",
    "CUDA error: out of memory": "GPU_OUT_OF_MEMORY",
    "CUDA error: device-side assert triggered": "CODE_DEFECT",  # an index out of range in a kernel
    "no kernel image is available for execution on the device": "EXEC_FORMAT_ERROR",
    "CUDA error: an illegal memory access was encountered": "CODE_DEFECT",
    # NCCL (ncclGetErrorString) and PyTorch's ProcessGroupNCCL watchdog
    "remote process exited or there was a network error": "CONNECTION_FAILED",
    "Watchdog caught collective operation timeout": "DEADLINE_EXCEEDED",
    # a connector or format whose jar or plugin is not installed (Kafka Connect, Flink SQL)
    "Failed to find any class that implements Connector": "MISSING_MODULE",
    "Could not find any factory for identifier": "MISSING_MODULE",
    # Arrow's Parquet reader and DuckDB's file scans
    "Parquet magic bytes not found": "INVALID_DATA",  # a corrupt or non-Parquet file
    "No files found that match the pattern": "MISSING_FILE",
    # Spark's messages from before its error classes (Spark 2.x-3.3 AnalysisException etc.)
    "Table or view not found": "MISSING_RESOURCE",
    "given input columns": "MISSING_RESOURCE",  # cannot resolve 'x' given input columns
    "Path does not exist": "MISSING_FILE",
    "Parquet column cannot be converted": "INVALID_DATA",  # the files' types disagree
    # Flink's CheckpointFailureReason.CHECKPOINT_EXPIRED: the checkpoint timeout ran out
    "Checkpoint expired before completing": "DEADLINE_EXCEEDED",
}
"""Messages libraries and engines print under a generic class, each naming one family."""
