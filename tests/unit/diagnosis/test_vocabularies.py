"""Standard error vocabularies decoded by the taxonomy layer: category, first action, transient.

Every message here is written for this test in the format the vendor's binding prints, from
the vendor's own reference (its URL above each group); none comes from the evaluation corpus.
"""

from __future__ import annotations

import pytest

from bunsui_core.diagnosis import library_classes, runtime_codes, sqlite_codes, taxonomy
from bunsui_core.diagnosis.catalog import definition
from bunsui_core.diagnosis.classifier import classify
from bunsui_core.diagnosis.vocabulary import Category as C
from bunsui_core.diagnosis.vocabulary import Layer
from bunsui_core.diagnosis.vocabulary import RecoveryAction as A

# (message, category, first action, transient)
VOCABULARIES = [
    # ---- SQLite result codes: https://www.sqlite.org/rescode.html (texts: sqlite3_errstr) ----
    # SQLITE_BUSY: another connection holds the lock past busy_timeout; it is released.
    ("sqlite3.OperationalError: database is locked", C.TIMEOUT, A.RETRY_WITH_BACKOFF, True),
    ("Error: SQLITE_BUSY: database is locked", C.TIMEOUT, A.RETRY_WITH_BACKOFF, True),
    # SQLITE_LOCKED (shared cache), as the JDBC driver prints it
    (
        "org.sqlite.SQLiteException: [SQLITE_LOCKED_SHAREDCACHE] A table in the database is "
        "locked (database table is locked)",
        C.TIMEOUT,
        A.RETRY_WITH_BACKOFF,
        True,
    ),
    # SQLITE_BUSY_SNAPSHOT: the read transaction's snapshot is stale; restart it
    (
        "SqliteError: database is locked\n    code: 'SQLITE_BUSY_SNAPSHOT'",
        C.APPLICATION,
        A.RETRY_WITH_BACKOFF,
        True,
    ),
    # SQLITE_CANTOPEN: a path that does not exist is never transient
    (
        "sqlite3.OperationalError: unable to open database file",
        C.DEPENDENCY,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    (
        "[Error: SQLITE_CANTOPEN: unable to open database file] { errno: 14, code: "
        "'SQLITE_CANTOPEN' }",
        C.DEPENDENCY,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    # SQLITE_CORRUPT / SQLITE_NOTADB: the database file itself is bad data
    (
        "sqlite3.DatabaseError: database disk image is malformed",
        C.DATA,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    ("sqlite3.DatabaseError: file is not a database", C.DATA, A.FIX_CODE_OR_DATA, False),
    # SQLITE_FULL
    (
        "sqlite3.OperationalError: database or disk is full",
        C.RESOURCE,
        A.FIX_CONFIGURATION,
        False,
    ),
    # SQLITE_READONLY / SQLITE_PERM / SQLITE_AUTH: no write permission, never transient
    (
        "sqlite3.OperationalError: attempt to write a readonly database",
        C.PERMISSION,
        A.FIX_PERMISSIONS,
        False,
    ),
    (
        "SQLITE_READONLY_DIRECTORY: attempt to write a readonly database",
        C.PERMISSION,
        A.FIX_PERMISSIONS,
        False,
    ),
    ("sqlite3.DatabaseError: not authorized (SQLITE_AUTH)", C.PERMISSION, A.FIX_PERMISSIONS, False),
    # SQLITE_CONSTRAINT_*: the data broke a constraint
    (
        "sqlite3.IntegrityError: UNIQUE constraint failed: customers.email",
        C.DATA,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    (
        "SqliteError: NOT NULL constraint failed: orders.total\n    code: "
        "'SQLITE_CONSTRAINT_NOTNULL'",
        C.DATA,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    ("Error: FOREIGN KEY constraint failed", C.DATA, A.FIX_CODE_OR_DATA, False),
    (
        "sqlite3.IntegrityError: CHECK constraint failed: quantity > 0",
        C.DATA,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    # SQLITE_IOERR_*: the storage under the file failed
    ("sqlite3.OperationalError: disk I/O error", C.RESOURCE, A.FIX_CONFIGURATION, False),
    (
        "database is corrupt or I/O failed (SQLITE_IOERR_SHORT_READ)",
        C.RESOURCE,
        A.FIX_CONFIGURATION,
        False,
    ),
    ("out of memory (SQLITE_IOERR_NOMEM)", C.RESOURCE, A.INCREASE_MEMORY, False),
    # SQLITE_NOMEM: SQLite allocates in the job's own process
    ("Error: SQLITE_NOMEM: out of memory", C.RESOURCE, A.INCREASE_MEMORY, False),
    # SQLITE_ERROR's messages that say what is missing or wrong
    (
        "sqlite3.OperationalError: no such table: daily_totals",
        C.DEPENDENCY,
        A.FIX_CONFIGURATION,
        False,
    ),
    ("sqlite3.OperationalError: no such module: fts5", C.DEPENDENCY, A.FIX_CONFIGURATION, False),
    (
        'sqlite3.OperationalError: near "FORM": syntax error',
        C.APPLICATION,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    # SQLITE_MISUSE / SQLITE_RANGE: the caller used the API wrongly
    ("Error: SQLITE_RANGE: column index out of range", C.APPLICATION, A.FIX_CODE_OR_DATA, False),
    ("sqlite3.DataError: string or blob too big", C.DATA, A.FIX_CODE_OR_DATA, False),
    ("sqlite3.OperationalError: too many SQL variables", C.APPLICATION, A.FIX_CODE_OR_DATA, False),
    # ---- PostgreSQL condition names and messages (psycopg / psycopg2 error classes):
    # https://www.postgresql.org/docs/current/errcodes-appendix.html ----
    (
        "psycopg2.InternalError: current transaction is aborted, commands ignored until end of "
        "transaction block",
        C.APPLICATION,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    (
        "psycopg2.errors.ReadOnlySqlTransaction: cannot execute INSERT in a read-only transaction",
        C.CONFIGURATION,
        A.FIX_CONFIGURATION,
        False,
    ),
    (
        "psycopg2.errors.CardinalityViolation: more than one row returned by a subquery used as "
        "an expression",
        C.DATA,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    (
        'psycopg.errors.UndefinedFile: could not access file "$libdir/postgis-3": No such file '
        "or directory",
        C.DEPENDENCY,
        A.FIX_CONFIGURATION,
        False,
    ),
    (
        'psycopg2.errors.IoError: could not write to file "base/pgsql_tmp/pgsql_tmp1.0"',
        C.RESOURCE,
        A.FIX_CONFIGURATION,
        False,
    ),
    (
        "psycopg2.errors.ExclusionViolation: conflicting key value violates exclusion "
        'constraint "no_overlap"',
        C.DATA,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    # ---- numpy: https://numpy.org/doc/stable/reference/routines.exceptions.html ----
    ("numpy.linalg.LinAlgError: Singular matrix", C.DATA, A.FIX_CODE_OR_DATA, False),
    (
        "numpy.exceptions.DTypePromotionError: The DType <class 'numpy.dtypes.StrDType'> could "
        "not be promoted by <class 'numpy.dtypes.Float64DType'>.",
        C.APPLICATION,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    (
        "numpy._core._exceptions._UFuncNoLoopError: ufunc 'add' did not contain a loop with "
        "signature matching types (dtype('<U3'), dtype('int64')) -> None",
        C.APPLICATION,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    # ---- pandas.errors: https://pandas.pydata.org/docs/reference/testing.html ----
    (
        "pandas.errors.IntCastingNaNError: Cannot convert non-finite values (NA or inf) to integer",
        C.DATA,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    (
        "pandas.errors.UndefinedVariableError: name 'region' is not defined",
        C.APPLICATION,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    (
        "pandas.errors.SpecificationError: nested renamer is not supported",
        C.APPLICATION,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    (
        "pandas.errors.OutOfBoundsTimedelta: Cannot cast 106752 days 00:00:00 to unit='ns' "
        "without overflow.",
        C.DATA,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    # ---- pyarrow (pyarrow/error.pxi): https://arrow.apache.org/docs/python/api/misc.html ----
    ("pyarrow.lib.ArrowIndexError: Index 12 out of bounds", C.DATA, A.FIX_CODE_OR_DATA, False),
    (
        "pyarrow.lib.ArrowCapacityError: array cannot contain more than 2147483646 bytes, "
        "have 2147489000",
        C.DATA,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    # ---- polars: https://docs.pola.rs/api/python/stable/reference/exceptions.html ----
    (
        'polars.exceptions.ColumnNotFoundError: unable to find column "net_amount"; valid '
        'columns: ["id", "gross_amount"]',
        C.DEPENDENCY,
        A.FIX_CONFIGURATION,
        False,
    ),
    (
        "polars.exceptions.InvalidOperationError: cannot cast List type (inner: 'Int64', to: "
        "'String')",
        C.APPLICATION,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    ("polars.exceptions.NoDataError: empty CSV", C.DATA, A.FIX_CODE_OR_DATA, False),
    (
        "polars.exceptions.ShapeError: unable to append to a DataFrame of width 4 with a "
        "DataFrame of width 3",
        C.DATA,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    (
        "polars.exceptions.ModuleUpgradeRequiredError: pyarrow>=11.0.0 is required",
        C.DEPENDENCY,
        A.FIX_CONFIGURATION,
        False,
    ),
    # ---- DuckDB error types (src/common/exception.cpp), as the CLI and clients print them:
    # https://duckdb.org/docs/stable/clients/python/known_issues / duckdb's exception.cpp ----
    (
        "Error: Catalog Error: Table with name daily_sales does not exist!",
        C.DEPENDENCY,
        A.FIX_CONFIGURATION,
        False,
    ),
    (
        "duckdb.duckdb.ConversionException: Conversion Error: Could not convert string 'n/a' "
        "to INT32",
        C.DATA,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    (
        'Error: Missing Extension Error: Catalog "pg" requires extension "postgres_scanner"',
        C.DEPENDENCY,
        A.FIX_CONFIGURATION,
        False,
    ),
    (
        "Error: TransactionContext Error: Catalog write-write conflict on create with "
        '"daily_sales"',
        C.APPLICATION,
        A.RETRY_WITH_BACKOFF,
        True,
    ),
    (
        "Error: Out of Memory Error: could not allocate block of size 256.0 KiB "
        "(4.0 GiB/4.0 GiB used)",
        C.RESOURCE,
        A.INCREASE_MEMORY,
        False,
    ),
    # ---- sqlalchemy.exc: https://docs.sqlalchemy.org/en/20/core/exceptions.html ----
    (
        "sqlalchemy.exc.TimeoutError: QueuePool limit of size 5 overflow 10 reached, "
        "connection timed out, timeout 30.00",
        C.RESOURCE,
        A.RETRY_WITH_BACKOFF,
        True,
    ),
    (
        "sqlalchemy.exc.PendingRollbackError: This Session's transaction has been rolled back "
        "due to a previous exception during flush.",
        C.APPLICATION,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    (
        "sqlalchemy.exc.NoResultFound: No row was found when one was required",
        C.DATA,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    (
        "sqlalchemy.exc.NoReferencedTableError: Foreign key associated with column "
        "'orders.customer_id' could not find table 'customers'",
        C.DEPENDENCY,
        A.FIX_CONFIGURATION,
        False,
    ),
    # ---- psycopg2 pool: https://www.psycopg.org/docs/pool.html ----
    ("psycopg2.pool.PoolError: connection pool exhausted", C.RESOURCE, A.RETRY_WITH_BACKOFF, True),
    # ---- pydantic: https://docs.pydantic.dev/latest/api/errors/ ----
    (
        "pydantic.errors.PydanticImportError: `BaseSettings` has been moved to the "
        "`pydantic-settings` package.",
        C.DEPENDENCY,
        A.FIX_CONFIGURATION,
        False,
    ),
    (
        "pydantic.errors.PydanticUserError: A non-annotated attribute was detected: `rate = 3`.",
        C.APPLICATION,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    # ---- PyTorch / CUDA: https://pytorch.org/docs/stable/notes/cuda.html ----
    (
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a "
        "total capacity of 15.77 GiB of which 1.02 GiB is free.",
        C.RESOURCE,
        A.RETRY_WITH_SMALLER_BATCH,
        False,
    ),
    (
        "RuntimeError: CUDA out of memory. Tried to allocate 512.00 MiB (GPU 0; 11.17 GiB "
        "total capacity; 10.10 GiB already allocated)",
        C.RESOURCE,
        A.RETRY_WITH_SMALLER_BATCH,
        False,
    ),
    (
        "RuntimeError: CUDA error: device-side assert triggered\nCUDA kernel errors might be "
        "asynchronously reported at some other API call",
        C.APPLICATION,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    (
        "RuntimeError: CUDA error: no kernel image is available for execution on the device",
        C.CONFIGURATION,
        A.FIX_CONFIGURATION,
        False,
    ),
    # NCCL's ncclGetErrorString and PyTorch's ProcessGroupNCCL watchdog:
    # https://docs.nvidia.com/deeplearning/nccl/user-guide/docs/api/types.html
    (
        "torch.distributed.DistBackendError: NCCL error in: ProcessGroupNCCL.cpp:1970, remote "
        "process exited or there was a network error, NCCL version 2.21.5",
        C.NETWORK,
        A.RETRY_WITH_BACKOFF,
        True,
    ),
    (
        "[Rank 3] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=12, "
        "OpType=ALLREDUCE, Timeout(ms)=600000) ran for 600412 milliseconds before timing out.",
        C.TIMEOUT,
        A.INCREASE_TIMEOUT,
        False,
    ),
    # Arrow's Parquet reader and DuckDB's file scan (github.com/apache/arrow, duckdb/duckdb)
    (
        "pyarrow.lib.ArrowInvalid: Could not open Parquet input source '<Buffer>': Parquet "
        "magic bytes not found in footer. Either the file is corrupted or this is not a "
        "parquet file.",
        C.DATA,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    (
        'duckdb.duckdb.IOException: IO Error: No files found that match the pattern "in/*.csv"',
        C.DEPENDENCY,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    # ---- Spark error conditions: https://spark.apache.org/docs/latest/sql-error-conditions.html
    (
        "pyspark.errors.exceptions.captured.AnalysisException: [AMBIGUOUS_REFERENCE] Reference "
        "`id` is ambiguous, could be: [`o`.`id`, `c`.`id`].",
        C.APPLICATION,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    (
        "[UNRESOLVED_FIELD.WITH_SUGGESTION] A field with name `zip` cannot be resolved with the "
        "struct-type column `address`.",
        C.DEPENDENCY,
        A.FIX_CONFIGURATION,
        False,
    ),
    (
        "org.apache.spark.SparkClassNotFoundException: [DATA_SOURCE_NOT_FOUND] Failed to find "
        "the data source: avro.",
        C.DEPENDENCY,
        A.FIX_CONFIGURATION,
        False,
    ),
    (
        "[CANNOT_MERGE_INCOMPATIBLE_DATA_TYPE] Failed to merge incompatible data types "
        '"STRING" and "BIGINT".',
        C.DATA,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    (
        "[INVALID_ARRAY_INDEX] The index 7 is out of bounds. The array has 3 elements.",
        C.DATA,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    (
        "[UNSUPPORTED_FEATURE.PANDAS_UDAF_IN_PIVOT] The feature is not supported: Pandas user "
        "defined aggregate function in the PIVOT clause.",
        C.CONFIGURATION,
        A.FIX_CONFIGURATION,
        False,
    ),
    # Spark's messages and classes from before error classes (Spark 2.x-3.3):
    # https://spark.apache.org/docs/3.3.0/sql-ref-ansi-compliance.html and its source
    (
        "org.apache.spark.sql.AnalysisException: Table or view not found: sales.orders; "
        "line 1 pos 14",
        C.DEPENDENCY,
        A.FIX_CONFIGURATION,
        False,
    ),
    (
        "org.apache.spark.sql.AnalysisException: cannot resolve 'amount' given input columns: "
        "[id, total]",
        C.DEPENDENCY,
        A.FIX_CONFIGURATION,
        False,
    ),
    (
        "org.apache.spark.sql.catalyst.parser.ParseException: \nmismatched input 'FORM' "
        "expecting <EOF>(line 1, pos 9)",
        C.APPLICATION,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    (
        "org.apache.spark.shuffle.FetchFailedException: Failed to connect to "
        "ip-10-0-0-5.ec2.internal/10.0.0.5:7337",
        C.NETWORK,
        A.RETRY_WITH_BACKOFF,
        True,
    ),
    # ---- Trino StandardErrorCode and ErrorType: https://trino.io/docs/current/admin/
    # properties-query-management.html and io.trino.spi.StandardErrorCode ----
    (
        'TrinoQueryError(type=INSUFFICIENT_RESOURCES, name=EXCEEDED_SPILL_LIMIT, message="Query '
        'exceeded local spill limit of 10GB")',
        C.RESOURCE,
        A.FIX_CONFIGURATION,
        False,
    ),
    (
        'TrinoExternalError(type=EXTERNAL, name=HIVE_METASTORE_ERROR, message="Failed '
        'connecting to Hive metastore: [metastore:9083]")',
        C.NETWORK,
        A.RETRY_WITH_BACKOFF,
        True,
    ),
    (
        "io.trino.spi.TrinoException: Query exceeded per-node memory limit of 1GB "
        "[Allocated: 1.00GB, Delta: 2.00MB]",
        C.RESOURCE,
        A.FIX_CONFIGURATION,
        False,
    ),
    (
        'TrinoUserError(type=USER_ERROR, name=SOME_CONNECTOR_ONLY_CODE, message="x")',
        C.APPLICATION,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    (
        "ICEBERG_COMMIT_ERROR: Failed to commit Iceberg update to table: sales.orders",
        C.APPLICATION,
        A.RETRY_WITH_BACKOFF,
        True,
    ),
    # ---- ClickHouse: https://clickhouse.com/docs/en/interfaces/formats and ErrorCodes.cpp
    # (github.com/ClickHouse/ClickHouse/blob/master/src/Common/ErrorCodes.cpp) ----
    (
        "Code: 252. DB::Exception: Too many parts (300). Merges are processing significantly "
        "slower than inserts. (TOO_MANY_PARTS)",
        C.THROTTLING,
        A.RETRY_WITH_BACKOFF,
        True,
    ),
    (
        "Code: 999. Coordination::Exception: Connection loss. (KEEPER_EXCEPTION)",
        C.NETWORK,
        A.RETRY_WITH_BACKOFF,
        True,
    ),
    (
        "Code: 115. DB::Exception: Unknown setting max_memory_usagex. (UNKNOWN_SETTING)",
        C.CONFIGURATION,
        A.FIX_CONFIGURATION,
        False,
    ),
    (
        "Code: 164. DB::Exception: Cannot modify 'max_threads' setting in readonly mode. "
        "(READONLY)",
        C.PERMISSION,
        A.FIX_PERMISSIONS,
        False,
    ),
    (
        "Code: 26. DB::ParsingException: Cannot parse quoted string: expected opening quote",
        C.DATA,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    (
        "Code: 203. DB::Exception: No free connection for ClickHouse pool (NO_FREE_CONNECTION)",
        C.RESOURCE,
        A.RETRY_WITH_BACKOFF,
        True,
    ),
    # ---- Kafka Java client / Connect: https://kafka.apache.org/documentation/ (javadoc of
    # org.apache.kafka.common.errors) ----
    (
        "org.apache.kafka.common.errors.ConcurrentTransactionsException: The producer attempted "
        "to update a transaction while another concurrent operation on the same transaction "
        "was ongoing.",
        C.APPLICATION,
        A.RETRY_WITH_BACKOFF,
        True,
    ),
    (
        "KafkaJSProtocolError: The group id does not exist (GROUP_ID_NOT_FOUND)",
        C.DEPENDENCY,
        A.FIX_CONFIGURATION,
        False,
    ),
    (
        "org.apache.kafka.connect.errors.DataException: Converting byte[] to Kafka Connect data "
        "failed due to serialization error",
        C.DATA,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    (
        "org.apache.kafka.connect.errors.ConnectException: Failed to find any class that "
        "implements Connector and which name matches io.example.MyConnector",
        C.DEPENDENCY,
        A.FIX_CONFIGURATION,
        False,
    ),
    # ---- Apache Flink: https://nightlies.apache.org/flink/flink-docs-stable/ ----
    (
        "org.apache.flink.runtime.jobmanager.scheduler.NoResourceAvailableException: Could not "
        "acquire the minimum required resources.",
        C.RESOURCE,
        A.FIX_CONFIGURATION,
        False,
    ),
    (
        "org.apache.flink.runtime.checkpoint.CheckpointException: Checkpoint expired before "
        "completing.",
        C.TIMEOUT,
        A.INCREASE_TIMEOUT,
        False,
    ),
    (
        "org.apache.flink.table.api.ValidationException: Could not find any factory for "
        "identifier 'kafka' that implements 'org.apache.flink.table.factories."
        "DynamicTableFactory' in the classpath.",
        C.DEPENDENCY,
        A.FIX_CONFIGURATION,
        False,
    ),
    # ---- MongoDB: https://www.mongodb.com/docs/manual/reference/error-codes/ and
    # https://pymongo.readthedocs.io/en/stable/api/pymongo/errors.html ----
    (
        "pymongo.errors.OperationFailure: Index already exists with a different name, full "
        "error: {'ok': 0.0, 'code': 85, 'codeName': 'IndexOptionsConflict'}",
        C.CONFIGURATION,
        A.FIX_CONFIGURATION,
        False,
    ),
    ("pymongo.errors.AutoReconnect: connection closed", C.NETWORK, A.RETRY_WITH_BACKOFF, True),
    (
        "pymongo.errors.WriteError: Performing an update on the path '_id' would modify the "
        "immutable field '_id', full error: {'index': 0, 'code': 66, 'codeName': "
        "'ImmutableField'}",
        C.APPLICATION,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    (
        "pymongo.errors.WTimeoutError: waiting for replication timed out, full error: {'code': "
        "64, 'codeName': 'WriteConcernTimeout'}",
        C.NETWORK,
        A.RETRY_WITH_BACKOFF,
        True,
    ),
    (
        "pymongo.errors.DocumentTooLarge: BSON document too large (17000000 bytes)",
        C.DATA,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    # ---- Redis error prefixes: https://redis.io/docs/latest/develop/reference/errors/ ----
    (
        "redis.exceptions.ResponseError: MISCONF Redis is configured to save RDB snapshots, "
        "but it's currently unable to persist to disk.",
        C.RESOURCE,
        A.FIX_CONFIGURATION,
        False,
    ),
    (
        "redis.exceptions.ResponseError: ERR max number of clients reached",
        C.RESOURCE,
        A.RETRY_WITH_BACKOFF,
        True,
    ),
    (
        "NOREPLICAS Not enough good replicas to write.",
        C.NETWORK,
        A.RETRY_WITH_BACKOFF,
        True,
    ),
    (
        "ReplyError: NOGROUP No such key 'events' or consumer group 'loaders'",
        C.DEPENDENCY,
        A.FIX_CONFIGURATION,
        False,
    ),
    (
        "EXECABORT Transaction discarded because of previous errors.",
        C.APPLICATION,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    # ---- Elasticsearch exception types: https://www.elastic.co/docs/api/doc/elasticsearch
    (
        "elasticsearch.NotFoundError: NotFoundError(404, 'search_context_missing_exception', "
        "'No search context found for id [81]')",
        C.TIMEOUT,
        A.INCREASE_TIMEOUT,
        False,
    ),
    (
        "NotFoundError(404, 'document_missing_exception', '[_doc][7]: document missing')",
        C.DEPENDENCY,
        A.FIX_CONFIGURATION,
        False,
    ),
    (
        '{"type":"node_disconnected_exception","reason":"[es-2][10.0.0.7:9300] disconnected"}',
        C.NETWORK,
        A.RETRY_WITH_BACKOFF,
        True,
    ),
    # ---- Node.js error codes: https://nodejs.org/api/errors.html#nodejs-error-codes ----
    (
        "Error [ERR_REQUIRE_ESM]: require() of ES Module /app/node_modules/node-fetch/src/"
        "index.js from /app/job.js not supported.",
        C.CONFIGURATION,
        A.FIX_CONFIGURATION,
        False,
    ),
    (
        "Error [ERR_SOCKET_CONNECTION_TIMEOUT]: Socket connection timeout",
        C.NETWORK,
        A.RETRY_WITH_BACKOFF,
        True,
    ),
    (
        "TypeError: fetch failed\n  [cause]: ConnectTimeoutError: Connect Timeout Error\n"
        "    code: 'UND_ERR_CONNECT_TIMEOUT'",
        C.NETWORK,
        A.RETRY_WITH_BACKOFF,
        True,
    ),
    (
        "Error: self-signed certificate in certificate chain\n    code: "
        "'SELF_SIGNED_CERT_IN_CHAIN'",
        C.CONFIGURATION,
        A.FIX_CONFIGURATION,
        False,
    ),
    (
        "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
        C.RESOURCE,
        A.INCREASE_MEMORY,
        False,
    ),
    # child_process: a command that is not installed (https://nodejs.org/api/child_process.html)
    ("Error: spawn python3 ENOENT", C.DEPENDENCY, A.FIX_CONFIGURATION, False),
    # Node's system errors by errno name: https://nodejs.org/api/errors.html#common-system-errors
    (
        "Error: listen EADDRINUSE: address already in use :::8080",
        C.CONFIGURATION,
        A.FIX_CONFIGURATION,
        False,
    ),
    # ---- npm: https://docs.npmjs.com/common-errors ----
    (
        "npm ERR! code ERESOLVE\nnpm ERR! ERESOLVE unable to resolve dependency tree",
        C.DEPENDENCY,
        A.FIX_CONFIGURATION,
        False,
    ),
    (
        "npm error code ETARGET\nnpm error notarget No matching version found for left-pad@^9.0.0.",
        C.DEPENDENCY,
        A.FIX_CONFIGURATION,
        False,
    ),
    # ---- Go runtime and net: https://go.dev/src/runtime/panic.go, https://pkg.go.dev/net ----
    ("fatal error: runtime: out of memory", C.RESOURCE, A.INCREASE_MEMORY, False),
    (
        "panic: runtime error: index out of range [5] with length 3\n\ngoroutine 1 [running]:",
        C.APPLICATION,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    (
        "fatal error: all goroutines are asleep - deadlock!",
        C.APPLICATION,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    (
        "dial tcp: lookup warehouse.internal on 10.0.0.2:53: no such host",
        C.NETWORK,
        A.RETRY_WITH_BACKOFF,
        True,
    ),
    ("dial tcp 10.0.4.7:5432: i/o timeout", C.NETWORK, A.RETRY_WITH_BACKOFF, True),
    ("read tcp 10.0.0.9:51234->10.0.4.7:5432: i/o timeout", C.NETWORK, A.RETRY, True),
    (
        'Get "https://api.example.net/v1/items": context deadline exceeded (Client.Timeout '
        "exceeded while awaiting headers)",
        C.NETWORK,
        A.RETRY,
        True,
    ),
    (
        'Get "https://api.example.net": x509: certificate signed by unknown authority',
        C.CONFIGURATION,
        A.FIX_CONFIGURATION,
        False,
    ),
    # ---- .NET: https://learn.microsoft.com/dotnet/api/system.systemexception ----
    (
        "System.FormatException: Input string was not in a correct format.",
        C.DATA,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    (
        "System.InvalidOperationException: Sequence contains no elements",
        C.APPLICATION,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    (
        "System.IO.DirectoryNotFoundException: Could not find a part of the path '/data/in'.",
        C.DEPENDENCY,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    (
        "System.DllNotFoundException: Unable to load shared library 'libgdiplus' or one of its "
        "dependencies.",
        C.DEPENDENCY,
        A.FIX_CONFIGURATION,
        False,
    ),
    (
        "System.Threading.Tasks.TaskCanceledException: The request was canceled due to the "
        "configured HttpClient.Timeout of 100 seconds elapsing.",
        C.NETWORK,
        A.RETRY,
        True,
    ),
    (
        "System.Net.Http.HttpRequestException: No such host is known. (api.example.net:443)",
        C.NETWORK,
        A.RETRY_WITH_BACKOFF,
        True,
    ),
    (
        "System.IO.IOException: There is not enough space on the disk.",
        C.RESOURCE,
        A.FIX_CONFIGURATION,
        False,
    ),
    # ---- google.api_core / google-auth: https://googleapis.dev/python/google-api-core/
    # latest/exceptions.html, https://googleapis.dev/python/google-auth/latest/reference/
    # google.auth.exceptions.html ----
    (
        "google.api_core.exceptions.PreconditionFailed: 412 PUT https://storage.googleapis.com/"
        "upload/b/o: At least one of the pre-conditions you specified did not hold.",
        C.APPLICATION,
        A.RETRY_WITH_BACKOFF,
        True,
    ),
    (
        "google.auth.exceptions.RefreshError: ('invalid_grant: Invalid JWT Signature.', "
        "{'error': 'invalid_grant'})",
        C.PERMISSION,
        A.FIX_PERMISSIONS,
        False,
    ),
    (
        "google.auth.exceptions.TransportError: HTTPSConnectionPool(host='oauth2.googleapis.com'"
        ", port=443): Max retries exceeded",
        C.NETWORK,
        A.RETRY_WITH_BACKOFF,
        True,
    ),
    # ---- Azure Storage / Resource Manager: https://learn.microsoft.com/rest/api/
    # storageservices/blob-service-error-codes, .../common-deployment-errors ----
    (
        "azure.core.exceptions.ResourceExistsError: The specified container already exists.\n"
        "ErrorCode:ContainerAlreadyExists",
        C.CONFIGURATION,
        A.FIX_CONFIGURATION,
        False,
    ),
    (
        "azure.core.exceptions.HttpResponseError: This request is not authorized to perform "
        "this operation.\nErrorCode:AuthorizationSourceIPMismatch",
        C.PERMISSION,
        A.FIX_PERMISSIONS,
        False,
    ),
    (
        "azure.core.exceptions.ResourceModifiedError: The condition specified using HTTP "
        "conditional header(s) is not met.\nErrorCode:ConditionNotMet",
        C.APPLICATION,
        A.RETRY_WITH_BACKOFF,
        True,
    ),
    (
        "(RequestDisallowedByPolicy) Resource 'vm1' was disallowed by policy.",
        C.PERMISSION,
        A.FIX_PERMISSIONS,
        False,
    ),
    (
        "(AllocationFailed) Allocation failed. We do not have sufficient capacity for the "
        "requested VM size in this region.",
        C.RESOURCE,
        A.FIX_CONFIGURATION,
        False,
    ),
]


@pytest.mark.parametrize(("message", "category", "action", "transient"), VOCABULARIES)
def test_vocabulary_code_is_decoded(message, category, action, transient):
    """The verdict is the one the vendor's reference describes, and the taxonomy layer reads
    it by itself (the catalog, when it matches first, agrees on the family's category)."""
    result = classify(message, use_model=False)
    assert (result.category, result.priors[0].action, result.transient) == (
        category,
        action,
        transient,
    ), (result.error_code, result.evidence)
    decoded = taxonomy.decode(message)
    assert decoded is not None
    family = definition(decoded.code)
    assert family is not None
    assert family.category is category, decoded.evidence
    if result.layer is not Layer.TAXONOMY:
        assert result.layer is Layer.CATALOG, result.evidence


@pytest.mark.parametrize(
    "prose",
    [
        "SELECT count(*) FROM busy_hours WHERE locked_at IS NULL",  # names, not codes
        "copied sqlite_busy_retries.csv; the row is locked_by=etl",
        "MYSQLITE_BUSY_FLAG and SQLITE_BUSYNESS are not SQLite's",
        "the Database Is Locked screen",  # SQLite prints its texts in lower case
        "there is no such table in the report",  # no `no such table: name`
        "the disk I/O errors chart",
    ],
)
def test_words_that_only_look_like_sqlite_codes_decode_nothing(prose):
    """SQLite's names and texts match with their own spelling, case and boundaries."""
    assert taxonomy.decode(prose) is None


@pytest.mark.parametrize(
    ("message", "code"),
    [
        # the same bare names in other libraries keep their own meaning
        ("openai.error.InvalidRequestError: model not found", "INVALID_REQUEST"),
        ("TimeoutError: [Errno 110] Connection timed out", "CONNECT_TIMEOUT"),
        ("java.lang.OutOfMemoryError: Java heap space", "OUT_OF_MEMORY"),
        ("java.util.concurrent.TimeoutException: the job's own deadline", "DEADLINE_EXCEEDED"),
        ("java.net.ConnectException: Connection refused", "CONNECTION_FAILED"),
        # an errno name in prose is still the errno, not Node's `spawn <command> ENOENT`
        ("we spawn workers; ENOENT handling is in utils", "MISSING_FILE"),
    ],
)
def test_qualified_classes_do_not_leak_to_their_bare_names(message, code):
    """sqlalchemy.exc.TimeoutError is a pool exhausted, torch.OutOfMemoryError the GPU's; the
    same bare names elsewhere are still what they say."""
    decoded = taxonomy.decode(message)
    assert decoded is not None
    assert decoded.code == code


@pytest.mark.parametrize(
    "prose",
    [
        "Connection Error: could not reach db.internal:5432",  # not DuckDB's closed handle
        "see the Catalog Error page",  # a DuckDB type only with `: ` after it
        "Catalog error: lower case is not DuckDB's spelling",
        "an ArgumentError in my notes",  # a bare SQLAlchemy name without its module
        "we saw cuda out-of-memory twice",
        "the BUSYGROUPS and MISCONFIGURED flags",  # Redis prefixes only as whole words
        "TOO_MANY_PARTS_WARNING is our own flag",
        "usertype=USER_ERROR_COUNT",
        "MY_ERR_REQUIRE_ESM_FLAG and err_require_esm",  # Node codes only whole, upper case
        "npm ERR! code ELIFECYCLE",  # a script's own failure: its output decides
        "the dial tcp handler logs i/o timeouts",
        "the ROOM command not allowed here",  # Redis OOM only as its own word
        "READONLYMODE and LOADING_DOCK are our flags",
        "counted busy_hours where locked_at > now()",
    ],
)
def test_words_that_only_look_like_library_codes_decode_nothing(prose):
    """Library types and qualified classes match with their own spelling and context."""
    assert taxonomy.decode(prose) is None


def test_an_sqlite_operational_error_alone_is_not_a_network_failure():
    """PEP 249's OperationalError reads as a lost connection for network drivers; SQLite is a
    file, so its class names no family and only its message decides (here: none known)."""
    result = classify("sqlite3.OperationalError: interrupted", use_model=False)
    assert result.category is not C.NETWORK
    assert not result.transient


def test_a_kafka_timeout_naming_a_missing_topic_is_never_transient():
    """Kafka's producer waits for metadata of a topic that may not exist, then raises its
    (retriable) TimeoutException: a missing thing must never be read as worth a retry."""
    result = classify(
        "org.apache.kafka.common.errors.TimeoutException: Topic events not present in metadata "
        "after 60000 ms.",
        use_model=False,
    )
    assert not result.transient
    assert result.category is not C.NETWORK


def test_every_sqlite_code_has_a_defined_family():
    """Each named code (primary and extended) answers a family the catalog defines."""
    assert {code for code in sqlite_codes.CODES.values() if definition(code) is None} == set()
    assert sqlite_codes.CODES["SQLITE_CONSTRAINT_UNIQUE"] == "INVALID_DATA"
    assert "SQLITE_ERROR" not in sqlite_codes.CODES  # generic: its message decides


@pytest.mark.parametrize(
    "name",
    sorted({*library_classes.FAMILIES, *library_classes.BASES, *runtime_codes.CLASSES}),
)
def test_every_library_class_is_read_when_raised(name):
    """Each table entry is reachable: the class pattern finds it raised as `pkg.Name: message`
    and it answers a family the catalog defines."""
    decoded = taxonomy.decode(f"somelib.errors.{name}: boom")
    assert decoded is not None, name
    assert definition(decoded.code) is not None
    assert decoded.evidence == f"exception class somelib.errors.{name}"


def test_every_qualified_class_overrides_its_bare_name():
    """A qualified entry answers its own family, or nothing for a generic class."""
    for qualified, code in library_classes.QUALIFIED.items():
        decoded = taxonomy.decode(f"{qualified}: boom")
        assert (decoded.code if decoded else None) == code, qualified
