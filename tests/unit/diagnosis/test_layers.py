"""Recognition in layers: standard taxonomies, run facts, pattern hygiene, linear time.

Examples here are written from the standards themselves (Python's exception hierarchy, errno,
SQLSTATE, HTTP, AWS error codes, JVM classes, Kubernetes reasons), not from the corpus.
"""

from __future__ import annotations

import builtins
import dataclasses
import errno
import subprocess
import sys
import time

import pytest

from bunsui_core.diagnosis import taxonomy
from bunsui_core.diagnosis.catalog import definition, load_catalog
from bunsui_core.diagnosis.classifier import classify, extract_context, match_catalog
from bunsui_core.diagnosis.patterns import catalog_pattern
from bunsui_core.diagnosis.templates import LabelVote, template_of
from bunsui_core.diagnosis.text_features import features
from bunsui_core.diagnosis.vocabulary import Category, Layer, RecoveryAction
from bunsui_core.model.session import FailureKind

CATALOG = load_catalog()
C = Category

STANDARD_EXAMPLES = [
    # Python's hierarchy, module-qualified names of data libraries, OSError by errno
    ("ModuleNotFoundError: No module named 'polars'", C.DEPENDENCY, "MISSING_MODULE"),
    ("ImportError: cannot import name 'x' from 'y'", C.DEPENDENCY, "MISSING_MODULE"),
    ("pandas.errors.ParserError: Error tokenizing data. C error", C.DATA, "INVALID_DATA"),
    ("json.decoder.JSONDecodeError: Expecting value: line 1 column 1", C.DATA, "INVALID_DATA"),
    ("IndexError: list index out of range", C.DATA, "INVALID_DATA"),
    ("ZeroDivisionError: division by zero", C.APPLICATION, "CODE_DEFECT"),
    ("NameError: name 'frame' is not defined", C.APPLICATION, "CODE_DEFECT"),
    ("AttributeError: 'NoneType' object has no attribute 'x'", C.APPLICATION, "CODE_DEFECT"),
    ("OSError: [Errno 28] No space left on device", C.RESOURCE, "DISK_FULL"),
    ("OSError: [Errno 24] Too many open files", C.RESOURCE, "RESOURCE_EXHAUSTED"),
    ("PermissionError: [Errno 13] Permission denied: '/x'", C.PERMISSION, "PERMISSION_DENIED"),
    ("FileNotFoundError: [Errno 2] No such file or directory", C.DEPENDENCY, "MISSING_FILE"),
    ("socket.gaierror: [Errno -2] Name or service not known", C.NETWORK, None),
    ("write EPIPE", C.NETWORK, "CONNECTION_FAILED"),
    ("/bin/sh: 1: dbt: command not found", C.DEPENDENCY, "MISSING_EXECUTABLE"),
    # a command line the job's program refused (getopt, argparse, Click)
    ("load.py: error: the following arguments are required: --date", C.CONFIGURATION, None),
    ("load.py: error: unrecognized arguments: --dyr 2024", C.CONFIGURATION, None),
    ("tar: invalid option -- 'q'", C.CONFIGURATION, "INVALID_REQUEST"),
    ("Error: No such option: --dry-rn", C.CONFIGURATION, "INVALID_REQUEST"),
    ('exec: "python3": executable file not found in $PATH', C.DEPENDENCY, "MISSING_EXECUTABLE"),
    ("OSError: [Errno 30] Read-only file system: '/x'", C.CONFIGURATION, None),
    # SQLSTATE classes as drivers print them
    ("ERROR: could not serialize (SQLSTATE 40001)", C.APPLICATION, "TRANSACTION_CONFLICT"),
    ("psycopg2.errors.QueryCanceled: canceling statement", C.TIMEOUT, "DEADLINE_EXCEEDED"),
    ("000604 (57014): SQL execution canceled", C.TIMEOUT, "DEADLINE_EXCEEDED"),
    ("ERROR 1045 (28000): Access denied for user", C.PERMISSION, None),
    ("sqlstate=08006 connection failure", C.NETWORK, "CONNECTION_FAILED"),
    ("SQLSTATE[42S02]: Base table or view not found", C.DEPENDENCY, "MISSING_RESOURCE"),
    ("SQLSTATE 53100 could not extend", C.RESOURCE, "DISK_FULL"),
    ("002003 (02000): SQL compilation error: Object 'T' does not exist", C.DEPENDENCY, None),
    # MySQL's numbered errors, as its drivers print them (no SQLSTATE)
    ("pymysql.err.IntegrityError: (1062, \"Duplicate entry '7' for key 'PRIMARY'\")", C.DATA, None),
    ("Error 1054: Unknown column 'x' in 'field list'", C.DEPENDENCY, "MISSING_RESOURCE"),
    ("SQLSTATE[HY000] [2005] Unknown MySQL server host 'db'", C.NETWORK, None),
    ("Error: ER_LOCK_WAIT_TIMEOUT: Lock wait timeout exceeded", C.TIMEOUT, None),
    ('{"errno": 1045, "sqlMessage": "Access denied"}', C.PERMISSION, None),
    # HTTP statuses
    ("requests.exceptions.HTTPError: 429 Client Error: for url", C.THROTTLING, "RATE_LIMITED"),
    ("HTTP/1.1 503 Service Unavailable", C.NETWORK, "SERVICE_UNAVAILABLE"),
    ("status code: 401", C.PERMISSION, "AUTHENTICATION_FAILED"),
    ("urllib.error.HTTPError: HTTP Error 502: Bad Gateway", C.NETWORK, None),
    ("Giving up after 5 tries. Last response: <Response [503]>", C.NETWORK, None),
    # OAuth 2.0 error codes (RFC 6749, 6750), under an HTTP 400 or a client's own class
    (
        "400 Client Error: Bad Request for url: https://oauth2.example/token "
        '{"error": "invalid_grant", "error_description": "Token has been expired or revoked."}',
        C.PERMISSION,
        "AUTHENTICATION_FAILED",
    ),
    ("oauthlib.oauth2.rfc6749.errors.InvalidClientError: (invalid_client)", C.PERMISSION, None),
    ('WWW-Authenticate: Bearer error="insufficient_scope"', C.PERMISSION, "PERMISSION_DENIED"),
    ('{"error":"invalid_scope","error_description":"unknown scope"}', C.CONFIGURATION, None),
    ("retry budget spent; got <Response [403]>", C.PERMISSION, None),
    # AWS error-code families
    ("An error occurred (SlowDown) when calling the PutObject operation", C.THROTTLING, None),
    ("An error occurred (ExpiredTokenException) when calling", C.PERMISSION, None),
    ('{"errorType": "Runtime.ImportModuleError"}', C.DEPENDENCY, "MISSING_MODULE"),
    ('{"error": "States.Permissions"}', C.PERMISSION, "PERMISSION_DENIED"),
    ("An error occurred (ResourceNotFoundException) when calling", C.DEPENDENCY, None),
    ("A client error (AccessDenied) occurred when calling the GetObject", C.PERMISSION, None),
    ("AWS Error SLOW_DOWN during PutObject operation", C.THROTTLING, "AWS_THROTTLING"),
    ("AWS Error NETWORK_CONNECTION during GetObject operation", C.NETWORK, None),
    # libcurl's error codes, under the libraries that print them
    ("curl: (6) Could not resolve host: api.internal", C.NETWORK, "NAME_RESOLUTION_FAILED"),
    ("cURL error 28: Operation timed out after 30001 milliseconds", C.NETWORK, None),
    ("AWS Error [code 99]: curlCode: 7, Couldn't connect to server", C.NETWORK, None),
    ("RuntimeError: maximum recursion depth exceeded in comparison", C.APPLICATION, None),
    # DuckDB's documented exception classes
    ("duckdb.CatalogException: Catalog Error: Table t does not exist", C.DEPENDENCY, None),
    ("duckdb.ConversionException: Conversion Error: Could not convert 'a'", C.DATA, None),
    # JVM classes, Kubernetes/Docker reasons
    ("java.lang.ClassNotFoundException: org.x.Y", C.DEPENDENCY, "MISSING_MODULE"),
    ("java.lang.NullPointerException", C.APPLICATION, "CODE_DEFECT"),
    ("java.net.SocketTimeoutException: Read timed out", C.NETWORK, None),
    ("Last State: Terminated  Reason: OOMKilled", C.RESOURCE, "OUT_OF_MEMORY"),
    ("Status: Failed  Reason: Evicted", C.RESOURCE, "CONTAINER_EVICTED"),
    ("Back-off pulling image: ImagePullBackOff", C.DEPENDENCY, "IMAGE_UNAVAILABLE"),
    ("exec /app/run: exec format error", C.CONFIGURATION, "EXEC_FORMAT_ERROR"),
]


class TestStandardTaxonomies:
    @pytest.mark.parametrize(("message", "category", "code"), STANDARD_EXAMPLES)
    def test_standard_vocabulary_is_decoded(self, message, category, code):
        """A message carrying a standard name or code gets that family's category, from the
        taxonomy layer unless a catalog entry is more specific."""
        result = classify(message, use_model=False)
        assert result.category is category, (result.error_code, result.evidence)
        assert result.layer in {Layer.TAXONOMY, Layer.CATALOG}
        if code is not None:
            assert result.error_code == code

    def test_python_hierarchy_is_read_from_the_interpreter(self):
        """Every builtin exception below ImportError, LookupError, ValueError or ArithmeticError
        falls in its base's family, including ones no table names."""
        bases = {
            ImportError: "MISSING_MODULE",
            LookupError: "INVALID_DATA",
            ValueError: "INVALID_DATA",
            ArithmeticError: "CODE_DEFECT",
        }
        for name in dir(builtins):
            cls = getattr(builtins, name)
            if not (isinstance(cls, type) and issubclass(cls, BaseException)):
                continue
            for base, code in bases.items():
                if issubclass(cls, base) and not issubclass(cls, OSError):
                    decoded = taxonomy.decode(f"{name}: boom")
                    assert decoded is not None, name
                    assert decoded.code == code, name

    @pytest.mark.parametrize(
        "prose",
        ["curl: Timeout was reached", "Field 'Timeout' is not supported", "Read the docs"],
    )
    def test_a_lone_capitalised_word_is_not_an_exception_class(self, prose):
        """`Timeout` in a sentence names no exception (a deadline the job exceeded is not the
        same failure as a network read timing out); `Timeout: x` or `x.Timeout` would."""
        assert taxonomy.decode(prose) is None
        assert taxonomy.decode("Timeout: no answer in 30s") is not None

    def test_a_refused_command_line_is_fixed_not_escalated(self):
        """A job whose program refused its arguments exits non-zero; what it printed says the
        command line is wrong, so the first step is to fix the configuration (it was an
        escalation to a human as a bare non-zero exit)."""
        message = (
            "Command exited with code 2 (memory limit 256 MiB, peak RSS 40.0 MiB)\n"
            "usage: load.py [-h] --date DATE\n"
            "load.py: error: the following arguments are required: --date"
        )
        result = classify(message, kind=FailureKind.EXIT_NONZERO, use_model=False)
        assert result.category is C.CONFIGURATION
        assert result.priors[0].action is RecoveryAction.FIX_CONFIGURATION

    def test_a_missing_optional_dependency_is_no_missing_option(self):
        """Click's `Missing option '--x'` is a command line; pandas' `Missing optional
        dependency 'pyarrow'` (read here without its class) is not."""
        assert taxonomy.decode("Missing optional dependency 'pyarrow'. Use pip.") is None
        assert taxonomy.decode("Error: Missing option '--date'.") is not None

    def test_oauth_codes_are_whole_tokens(self):
        """`invalid_grant_type` or `my_invalid_token_count` is no OAuth error code."""
        assert taxonomy.decode("config key invalid_grant_type is unset") is None
        assert taxonomy.decode("metric my_invalid_token_count rose") is None

    def test_a_number_mysql_does_not_define_decodes_nothing(self):
        """Only the reference's numbers count: `(1999, 'x')` or `Error 4040` is no MySQL error."""
        assert taxonomy.decode("(1999, 'x')") is None
        assert taxonomy.decode("Error 4040 happened") is None

    def test_every_code_the_taxonomy_answers_is_defined(self):
        """No decoder can answer with a code that has no category, flags and actions."""
        assert {c for c in taxonomy.emitted_codes() if definition(c) is None} == set()


class TestMissingThingsAreNeverTransient:
    @pytest.mark.parametrize(
        "message",
        [
            "ModuleNotFoundError: No module named 'pyarrow'",
            "FileNotFoundError: [Errno 2] No such file or directory: 'in.csv'",
            "PermissionError: [Errno 13] Permission denied: '/out'",
            "Error: Cannot find module 'express'",
        ],
    )
    def test_missing_module_file_or_permission_is_not_transient(self, message):
        """The ENOTFOUND-inside-ModuleNotFoundError leak made these a transient DNS failure;
        none of them is transient, whatever the engine observed."""
        for kind in (None, FailureKind.EXIT_NONZERO):
            result = classify(message, kind=kind)
            assert not result.transient
            assert result.category is not Category.NETWORK

    def test_node_dns_code_is_still_dns(self):
        """ENOTFOUND as Node prints it is still a DNS failure."""
        result = classify("Error: getaddrinfo ENOTFOUND db.internal")
        assert result.category is Category.NETWORK

    @pytest.mark.parametrize(
        "message",
        [
            "250001 (08001): Failed to connect to DB: acct.example.com:443. Incorrect username "
            "or password specified.",
            "[CLI Driver] SQL30082N Security processing failed with reason 24 (USERNAME AND/OR "
            "PASSWORD INVALID). SQLSTATE=08001",
            "ConnectionError: Login failed for user 'etl'.",
            "sqlalchemy.exc.OperationalError: (pymysql.err.OperationalError) Access denied for "
            "user 'etl'@'10.0.0.7'",
            "java.sql.SQLNonTransientConnectionException: invalid credentials",
            "SQLSTATE 08004: server rejected the connection: HTTP 401",
        ],
    )
    @pytest.mark.parametrize("use_model", [False, True], ids=["rules", "with-the-model"])
    def test_a_refused_login_under_a_connection_code_is_a_permission_failure(
        self, message, use_model
    ):
        """Drivers raise a refused login with their connection class or SQLSTATE 08001/08004;
        retrying it with the same credentials only locks the account, so it is not transient,
        by the rules alone or with the shipped model (to which a rule's reading may yield)."""
        result = classify(message, use_model=use_model)
        assert result.category is Category.PERMISSION, (result.error_code, result.evidence)
        assert not result.transient

    @pytest.mark.parametrize(
        "message",
        [
            "SQLSTATE 08001: could not connect to server: Connection refused",
            "sqlalchemy.exc.OperationalError: server closed the connection unexpectedly",
            "ftplib: login failed: [Errno 111] Connection refused",
            "SFTP login failed: Connection reset by peer",
        ],
    )
    def test_a_connection_failure_without_a_refused_login_stays_a_network_failure(self, message):
        """Only a login refusal overrides the connection class or code, and not a connection
        the socket itself saw fail (an errno, its strerror): that login failed because the
        network did."""
        result = classify(message, use_model=False)
        assert result.category is Category.NETWORK, (result.error_code, result.evidence)

    def test_the_evidence_quotes_the_whole_refusal(self):
        """What an on-call reads in `evidence` is the refusal as printed, not half of it."""
        result = classify("08001: Incorrect username or password specified.", use_model=False)
        assert result.evidence == "login refused 'Incorrect username or password'"

    def test_a_tls_handshake_the_peer_cut_is_no_refused_login(self):
        """.NET's `Authentication failed because the remote party has closed the transport
        stream` is a TLS handshake cut short, not wrong credentials."""
        message = (
            "System.IO.IOException: Authentication failed because the remote party has closed "
            "the transport stream."
        )
        assert classify(message, use_model=False).category is not Category.PERMISSION

    def test_pythons_own_wording_of_a_type_error_outweighs_a_drivers_broad_class(self):
        """A connector that wraps an AttributeError in its OperationalError is not a network
        failure: CPython's `object has no attribute` says the code is wrong."""
        message = (
            "OperationalError 250003: Failed to execute request: 'S' object has no attribute 'x'"
        )
        result = classify(message, use_model=False)
        assert result.category is Category.APPLICATION, (result.error_code, result.evidence)
        assert not result.transient

    def test_a_standard_text_with_regex_metacharacters_is_matched_literally(self):
        """CPython's `unsupported operand type(s) for +` is found as printed: the phrase
        tables' parentheses are literals, not a regex group that would match `types for`."""
        decoded = taxonomy.decode("step failed: unsupported operand type(s) for +: 'int' and 'str'")
        assert decoded is not None
        assert decoded.evidence == "standard message 'unsupported operand type(s) for'"
        assert taxonomy.decode("step failed: unsupported operand types for +") is None

    @pytest.mark.parametrize(
        "message",
        [
            "jaxlib.xla_extension.XlaRuntimeError: RESOURCE_EXHAUSTED: Out of memory while "
            "trying to allocate 4770354232 bytes.",
            "cuMemAllocAsync failed to allocate 1225195446464 bytes: RESOURCE_EXHAUSTED: : "
            "CUDA_ERROR_OUT_OF_MEMORY: out of memory",
            "RESOURCE_EXHAUSTED: OOM when allocating tensor with shape[16,112,112,147]",
        ],
    )
    def test_a_tensor_runtime_out_of_memory_is_no_rate_limit(self, message):
        """XLA and TensorFlow print an allocation that did not fit under gRPC's shared status
        RESOURCE_EXHAUSTED: a retry would repeat it, a smaller batch shrinks it."""
        result = classify(message, use_model=False)
        assert result.category is Category.RESOURCE, (result.error_code, result.evidence)
        assert not result.transient
        assert result.priors[0].action is RecoveryAction.RETRY_WITH_SMALLER_BATCH

    def test_a_quota_under_resource_exhausted_stays_a_rate_limit(self):
        """Only the status's own line decides: memory named on another line changes nothing."""
        for message in [
            "8 RESOURCE_EXHAUSTED: Persistence Max QPS Reached for List Operations.",
            'status = StatusCode.RESOURCE_EXHAUSTED\n details = "Quota exceeded"\nout of memory',
        ]:
            result = classify(message, use_model=False)
            assert result.category is Category.THROTTLING, (result.error_code, result.evidence)


def _identifier_literals() -> list[str]:
    literals = set()
    for entry in CATALOG.entries:
        for rule in (entry.match, *entry.also):
            for pattern in rule.patterns:
                if " " not in pattern and pattern.isidentifier():
                    literals.add(pattern)
    return sorted(literals)


class TestPatternHygiene:
    @pytest.mark.parametrize("literal", _identifier_literals())
    def test_identifier_patterns_cannot_leak_into_other_words(self, literal):
        """An identifier pattern matches itself, but not glued inside a longer lowercase word
        nor in another case (the ENOTFOUND / modulENOTFOUNDerror leak)."""
        compiled = catalog_pattern(literal)
        assert compiled.search(f"x {literal} y")
        assert not compiled.search(f"ab{literal}cd".lower())
        assert not compiled.search(f"zz{literal}")
        if literal.lower() != literal:
            assert not compiled.search(literal.lower())

    @pytest.mark.parametrize(
        "name", sorted(n for n in dir(builtins) if n.endswith(("Error", "Exception")))
    )
    def test_no_catalog_entry_contradicts_pythons_hierarchy(self, name):
        """A builtin exception name alone never lands in a catalog entry of another category
        than Python's hierarchy gives it."""
        message = f"{name}: something went wrong"
        matched = match_catalog(CATALOG, message, None, {})
        decoded = taxonomy.decode(message)
        if matched and decoded:
            assert matched[0].category == definition(decoded.code).category

    @pytest.mark.parametrize("name", sorted(errno.errorcode.values()))
    def test_errno_names_do_not_leak_into_network_entries(self, name):
        """An errno name the taxonomy does not map never triggers a transient catalog entry."""
        matched = match_catalog(CATALOG, f"failed: {name}", None, {})
        decoded = taxonomy.decode(f"failed: {name}")
        if matched and not decoded:
            assert not matched[0].transient, (name, matched[0].error_code)


ADVERSARIAL = [
    "9" * 40_000,
    "9" * 100_000,
    "1." * 50_000,
    "Error" * 20_000,
    "a" * 100_000,
    "ExceptionException." * 5_000,
    "[Errno " * 14_000,
    "SQLSTATE " * 11_000,
    "/a" * 50_000,
    "'" * 100_000,
    "Memory Size: 1 MB " * 5_000,
    " of 1 KB physical memory used" * 3_000,
    "é\u0000\ud7ff" * 30_000,
]


class TestLinearTime:
    @pytest.mark.parametrize("text", ADVERSARIAL, ids=lambda t: f"{t[:12]!r}x{len(t)}")
    def test_every_pattern_and_extractor_finishes_fast(self, text):
        """Each catalog pattern, each extractor, the taxonomy decoders, the template masker,
        the model features and a whole classification finish in well under a second on a
        100k-character adversarial string (a 40k-digit classify once took 8-12 s)."""
        slowest = 0.0
        for entry in CATALOG.entries:
            for rule in (entry.match, *entry.also):
                for pattern in (*rule.patterns, *rule.unless):
                    started = time.perf_counter()
                    catalog_pattern(pattern).search(text)
                    slowest = max(slowest, time.perf_counter() - started)
        for extractor in CATALOG.extractors:
            started = time.perf_counter()
            extractor.search(text)
            slowest = max(slowest, time.perf_counter() - started)
        assert slowest < 0.5
        for step in (
            lambda: extract_context(CATALOG, text),
            lambda: taxonomy.decode(text),
            lambda: template_of(text),
            lambda: features(text),
            lambda: classify(text),
            lambda: classify(text, learned=(LabelVote("x", "DATA", "fix_code_or_data"),)),
        ):
            started = time.perf_counter()
            step()
            assert time.perf_counter() - started < 2.0


class TestRunFacts:
    def test_engine_oom_kill_is_the_memory_limit(self):
        """A kill with the peak at the limit (the engine's resident-memory enforcement) is
        LOCAL_MEMORY_LIMIT, decided by run facts, with its sizes for the plan."""
        result = classify(
            "Command exited with code 137 (memory limit 128 MiB, peak RSS 128.0 MiB)",
            kind=FailureKind.EXIT_NONZERO,
            run_context={"exit_code": 137, "memory_enforcement": "cgroup_v2"},
        )
        assert (result.error_code, result.layer) == ("LOCAL_MEMORY_LIMIT", Layer.RUN_FACTS)
        assert result.priors[0].action is RecoveryAction.INCREASE_MEMORY

    def test_exit_137_in_text_is_a_sigkill(self):
        """A message that only reports exit code 137 is read as a SIGKILL (likely OOM)."""
        result = classify("Task failed: exit code 137", use_model=False)
        assert (result.error_code, result.layer) == ("KILLED_SIGKILL", Layer.RUN_FACTS)
        assert result.category is Category.RESOURCE

    @pytest.mark.parametrize(
        "message",
        [
            "worker process exit with code 137",
            "The container exited with exit code 137",
            "Command '['python', 'etl.py']' returned non-zero exit status 137.",
            "State: Terminated, Exit Code: 137",
            'task stopped {"exitCode": 137, "reason": ""}',
            "child failed: exit_code=137",
            "step finished, exit status is 137",
        ],
    )
    def test_every_usual_spelling_of_exit_status_137_is_a_sigkill(self, message):
        """Tools spell a process's exit status many ways (written for this test, one per
        common form); each reports the same SIGKILL."""
        result = classify(message, use_model=False)
        assert (result.error_code, result.layer) == ("KILLED_SIGKILL", Layer.RUN_FACTS)

    @pytest.mark.parametrize(
        "message",
        [
            "worker process exit with code 1370",
            "exit codes: 137 means killed, 139 means segfault (see docs)",
            "read 137 rows, exit code 0",
        ],
    )
    def test_other_numbers_near_exit_are_not_a_sigkill(self, message):
        """A longer number, a list of codes or another status is not an exit of 137."""
        result = classify(message, use_model=False)
        assert result.error_code != "KILLED_SIGKILL"

    @pytest.mark.parametrize(
        ("status", "code", "category"),
        [(127, "MISSING_EXECUTABLE", C.DEPENDENCY), (126, "PERMISSION_DENIED", C.PERMISSION)],
    )
    def test_shell_statuses_say_what_was_wrong_with_the_command(self, status, code, category):
        """A shell exits 127 when the command is not found and 126 when it may not run it:
        never transient, whatever (or nothing) the job printed."""
        for message in ("", "Traceback? no, just a status"):
            result = classify(
                f"Command exited with code {status}\n{message}",
                kind=FailureKind.EXIT_NONZERO,
                run_context={"exit_code": status},
                use_model=False,
            )
            assert (result.error_code, result.layer) == (code, Layer.RUN_FACTS)
            assert result.category is category
            assert not result.transient


class TestLazyModel:
    def test_commands_that_do_not_classify_never_load_numpy(self, tmp_path):
        """Listing sessions imports neither numpy nor the model file."""
        code = (
            "import sys\n"
            "from bunsui_core.actions import Gateway\n"
            "from bunsui_core.config import Settings\n"
            f"gateway = Gateway(Settings.resolve({str(tmp_path)!r}))\n"
            "gateway.invoke('ai-agent', 'session:list', {})\n"
            "assert 'numpy' not in sys.modules, 'numpy loaded'\n"
            "assert 'bunsui_core.diagnosis.model' not in sys.modules\n"
        )
        subprocess.run([sys.executable, "-c", code], check=True, timeout=60)

    def test_the_model_never_decides_from_the_engines_own_headline(self):
        """A bare exit with bunsui's headline and nothing the job wrote is not a model verdict:
        the catalog's LOCAL_NONZERO_EXIT answers, whatever limit the headline mentions."""
        result = classify(
            "Command exited with code 3 (memory limit 256 MiB, peak RSS 40.0 MiB)",
            kind=FailureKind.EXIT_NONZERO,
        )
        assert (result.error_code, result.layer) == ("LOCAL_NONZERO_EXIT", Layer.RUN_FACTS)
        assert result.hypothesis is None

    def test_unknown_carries_the_models_hypothesis(self):
        """Text no rule knows is UNKNOWN (escalate) or a model verdict; either way the model's
        best guess is kept with a probability."""
        result = classify("the flux capacitor is misaligned again after the widget sync")
        if result.error_code == "UNKNOWN":
            assert result.layer is Layer.NONE
            assert [p.action for p in result.priors] == [RecoveryAction.ESCALATE]
            assert result.hypothesis is None or 0 <= result.hypothesis.probability <= 1
        else:
            assert result.layer is Layer.MODEL


class TestModelVerdict:
    @pytest.mark.parametrize("category", ["PERMISSION", "DEPENDENCY"])
    def test_a_model_verdict_of_missing_or_forbidden_is_never_transient(self, category):
        """The category and action heads are fitted apart: even when the action head says
        retry, a predicted missing dependency or permission is not called transient."""
        import numpy as np  # noqa: PLC0415

        from bunsui_core.diagnosis.model import Head, TextModel  # noqa: PLC0415

        def head(classes, best):
            intercept = np.array([5.0 if c == best else 0.0 for c in classes])
            return Head(classes, np.zeros((len(classes), 0)), intercept, temperature=1.0)

        model = TextModel(
            vocabulary={},
            idf=np.zeros(0),
            heads={
                "category": head(["NETWORK", category], category),
                "first_action": head(
                    ["fix_permissions", "retry_with_backoff"], "retry_with_backoff"
                ),
            },
            threshold=0.0,
            layer_precision={},
        )
        result = classify("the flux capacitor failed again after the widget sync", model=model)
        assert (result.layer, result.category.value) == (Layer.MODEL, category)
        assert not result.transient

    @pytest.mark.parametrize(("gate", "transient"), [(0.99, False), (0.5, True)])
    def test_a_retry_is_advised_only_above_the_models_transient_threshold(self, gate, transient):
        """Below the probability at which the model once called a missing thing or a refusal
        transient out of family, its NETWORK answer stands but a retry is not advised."""
        import numpy as np  # noqa: PLC0415

        from bunsui_core.diagnosis.model import Head, TextModel  # noqa: PLC0415

        model = TextModel(
            vocabulary={},
            idf=np.zeros(0),
            heads={
                "category": Head(
                    ["NETWORK", "PERMISSION"], np.zeros((2, 0)), np.array([2.0, 0.0]), 1.0
                ),
                "first_action": Head(["retry"], np.zeros((1, 0)), np.zeros(1), 1.0),
            },
            threshold=0.0,
            layer_precision={},
            transient_threshold=gate,
        )
        result = classify("the widget sync failed again", model=model)
        assert (result.layer, result.category.value) == (Layer.MODEL, "NETWORK")
        assert 0.5 < result.confidence < 0.99
        assert result.transient is transient


class TestRuleConfidence:
    def test_a_class_reading_answers_with_the_precision_of_class_readings(self):
        """An exception class is weaker evidence than a standard code (code raises classes
        beyond their meaning), so each answers with its own measured precision."""
        import numpy as np  # noqa: PLC0415

        from bunsui_core.diagnosis.model import Head, TextModel  # noqa: PLC0415

        model = TextModel(
            vocabulary={},
            idf=np.zeros(0),
            heads={  # undecided (p=0.5 each, below its threshold): the rules answer
                "category": Head(["DATA", "NETWORK"], np.zeros((2, 0)), np.zeros(2), 1.0),
                "first_action": Head(["escalate"], np.zeros((1, 0)), np.zeros(1), 1.0),
            },
            threshold=0.99,
            layer_precision={"taxonomy": 0.9, taxonomy.CLASS_READING: 0.6},
        )
        by_class = classify("ValueError: the widget count must be positive", model=model)
        by_code = classify("ERROR: deadlock detected SQLSTATE 40P01", model=model)
        assert (by_class.layer, by_class.confidence) == (Layer.TAXONOMY, 0.6)
        assert (by_code.layer, by_code.confidence) == (Layer.TAXONOMY, 0.9)

    def test_class_readings_are_measured_apart_from_codes(self):
        """Training tallies the taxonomy's class readings under their own key (Laplace
        smoothed): here two right and one wrong, against two right code readings."""
        from bunsui_core.diagnosis.training import Example, rule_layer_precision  # noqa: PLC0415

        def example(message, category):
            return Example("x-001", "x", message, category, "fix_code_or_data", False)

        precision = rule_layer_precision(
            [
                example("ValueError: the widget count must be positive", "DATA"),
                example("TypeError: the widget is late", "APPLICATION"),
                example("NameError: widget is not defined", "NETWORK"),
                example("ERROR: deadlock detected SQLSTATE 40P01", "APPLICATION"),
                example("psql: FATAL: SQLSTATE 28P01 password authentication failed", "PERMISSION"),
            ]
        )
        assert precision[taxonomy.CLASS_READING] == 0.6
        assert precision["taxonomy"] == 0.75


class TestDomainRecognizers:
    def test_a_registered_recognizer_answers_before_the_taxonomy(self):
        """A domain module (dbt, ...) plugs in after the catalog and before the standard
        taxonomies; returning None lets the layers go on."""
        from bunsui_core.diagnosis import classifier  # noqa: PLC0415

        def recognize(text, kind, context):
            if "Compilation Error in model" not in text:
                return None
            entry = definition("INVALID_REQUEST")
            return classifier.Classification(
                error_code="DBT_TEST_COMPILATION",
                category=entry.category,
                transient=False,
                recoverable=False,
                description="test recognizer",
                context=context,
                priors=entry.actions,
                layer=Layer.CATALOG,
                confidence=0.9,
            )

        classifier.register_recognizer(recognize)
        try:
            found = classify("Compilation Error in model orders: ValueError: bad")
            passed = classify("ValueError: bad")
        finally:
            classifier._RECOGNIZERS.remove(recognize)
        assert found.error_code == "DBT_TEST_COMPILATION"
        assert passed.error_code == "INVALID_DATA"


class TestRulesYieldToASurerModel:
    """A rule's reading of the text yields to the model when the model disagrees and its
    calibrated probability is above the precision that rule's layer measured."""

    @staticmethod
    def model(probability: float, category: str = "PERMISSION"):
        """A model that answers `category` with `probability` whatever the text says."""
        import numpy as np  # noqa: PLC0415

        from bunsui_core.diagnosis.model import Head, TextModel  # noqa: PLC0415

        logit = float(np.log(probability / (1 - probability)))
        return TextModel(
            vocabulary={},
            idf=np.zeros(0),
            heads={
                "category": Head(
                    [category, "UNKNOWN"], np.zeros((2, 0)), np.array([logit, 0.0]), 1.0
                ),
                "first_action": Head(["fix_permissions"], np.zeros((1, 0)), np.zeros(1), 1.0),
            },
            threshold=0.3,
            layer_precision={
                "catalog": 0.9,
                "taxonomy": 0.85,
                taxonomy.CLASS_READING: 0.65,
                "run_facts": 0.95,
            },
            transient_threshold=1.0,
        )

    def test_a_class_reading_yields_to_a_model_surer_than_class_readings_are(self):
        text = "ValueError: the role could not be assumed, access was refused"
        result = classify(text, model=self.model(0.8))
        assert (result.layer, result.category) == (Layer.MODEL, Category.PERMISSION)
        assert result.confidence == pytest.approx(0.8, abs=0.01)
        assert "over exception class ValueError" in result.evidence
        assert "surer than the taxonomy reading" in result.description
        assert result.priors[0].action is RecoveryAction.FIX_PERMISSIONS

    def test_a_model_less_sure_than_the_layer_leaves_the_reading(self):
        text = "ValueError: the role could not be assumed, access was refused"
        result = classify(text, model=self.model(0.6))
        assert (result.layer, result.category) == (Layer.TAXONOMY, Category.DATA)
        assert result.confidence == 0.65

    def test_a_code_reading_needs_a_model_surer_than_code_readings_are(self):
        text = "ERROR: deadlock detected SQLSTATE 40P01"
        assert classify(text, model=self.model(0.8)).layer is Layer.TAXONOMY
        assert classify(text, model=self.model(0.9)).layer is Layer.MODEL

    def test_a_model_that_agrees_leaves_the_rules_answer(self):
        text = "psql: FATAL: SQLSTATE 28P01 password authentication failed"
        result = classify(text, model=self.model(0.99))
        assert (result.layer, result.category) == (Layer.TAXONOMY, Category.PERMISSION)

    def test_a_refused_login_never_yields_to_a_retry(self):
        """However sure the model is that a refused login is a network failure worth
        retrying, the refusal stands: retries would lock the account."""
        text = "psql: FATAL: SQLSTATE 28P01 password authentication failed"
        sure = self.model(0.99, "NETWORK")
        retries = dataclasses.replace(sure.heads["first_action"], classes=["retry_with_backoff"])
        retrying = dataclasses.replace(
            sure, transient_threshold=0.5, heads={**sure.heads, "first_action": retries}
        )
        assert classify("widget sync failed", model=retrying).transient  # it would retry
        result = classify(text, model=retrying)
        assert (result.layer, result.category) == (Layer.TAXONOMY, Category.PERMISSION)
        assert not result.transient

    @pytest.mark.parametrize("category", ["NETWORK", "TIMEOUT", "RESOURCE", "DATA"])
    def test_a_refusal_yields_to_no_answer_that_lists_reruns(self, category):
        """Below its retry threshold the model's answer is not transient, but its actions
        (a longer timeout, more memory) would still rerun the job: a refusal stands."""
        text = "PermissionError: access refused"
        result = classify(text, model=self.model(0.99, category))
        assert (result.layer, result.category) == (Layer.TAXONOMY, Category.PERMISSION)

    def test_a_missing_thing_may_yield_to_a_refusal(self):
        text = "ImportError: cannot import name 'token' from the credentials module"
        assert classify(text, model=self.model(0.6)).category is Category.DEPENDENCY
        result = classify(text, model=self.model(0.95))
        assert (result.layer, result.category) == (Layer.MODEL, Category.PERMISSION)

    def test_a_catalog_reading_needs_a_model_surer_than_the_catalog(self):
        text = "botocore.exceptions.ClientError: ThrottlingException: Rate exceeded"
        read = classify(text, model=self.model(0.85, "DATA"))
        assert (read.layer, read.category) == (Layer.CATALOG, Category.THROTTLING)
        result = classify(text, model=self.model(0.95, "DATA"))
        assert (result.layer, result.category) == (Layer.MODEL, Category.DATA)
        assert "over catalog" in result.evidence

    def test_a_catalog_entry_that_needs_run_facts_never_yields(self):
        """LOCAL_MEMORY_LIMIT reads `MemoryError` only under a limit bunsui set."""
        result = classify(
            "MemoryError", run_context={"memory_limit_mb": 128}, model=self.model(0.99, "DATA")
        )
        assert (result.error_code, result.layer) == ("LOCAL_MEMORY_LIMIT", Layer.CATALOG)

    def test_run_facts_never_yield(self):
        result = classify(
            "ValueError: access refused", kind=FailureKind.TIMEOUT, model=self.model(0.99)
        )
        assert (result.layer, result.category) == (Layer.RUN_FACTS, Category.TIMEOUT)
