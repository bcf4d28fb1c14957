"""dbt's failures diagnosed: tests are DATA on their model, code errors carry file and line."""

from __future__ import annotations

import pytest

from bunsui_core.diagnosis.analyzer import classify_record
from bunsui_core.diagnosis.dbt import classify_dbt
from bunsui_core.diagnosis.loads import classify_load
from bunsui_core.diagnosis.vocabulary import Category
from bunsui_core.model.session import ErrorRecord, FailureKind

# Messages as dbt-core 1.11 with dbt-duckdb 1.11 prints them.
MISSING_REF = (
    "dbt build failed before running any node\n"
    "Encountered an error:\nCompilation Error\n"
    "  Model 'model.shop.bad' (models/bad.sql) depends on a node named 'nonexistent' which "
    "was not found"
)
MISSING_SOURCE = (
    "Encountered an error:\nCompilation Error\n"
    "  Model 'model.shop.stg' (models/staging/stg.sql) depends on a source named "
    "'raw.orders' which was not found"
)
JINJA = (
    "dbt build failed before running any node\nEncountered an error:\n"
    "Compilation Error in model bad (models/bad.sql)\n"
    "  expected token 'end of print statement', got 'x'\n    line 4\n      {{ x x }}"
)
PARSING = (
    "Encountered an error:\nParsing Error\n"
    "  Error reading shop: staging/schema.yml - Runtime Error\n"
    "    Syntax error near line 5\n    ------------------------------\n"
)
DATABASE = (
    "dbt model broken (models/broken.sql) error\n"
    "Runtime Error in model broken (models/broken.sql)\n"
    '  Binder Error: Referenced column "nosuchcol" not found in FROM clause!'
)
TEST_FACTS = {
    "dbt_command": "build",
    "dbt_node": "test.shop.not_null_stg_orders_customer_id.af79d5e4b5",
    "dbt_resource_type": "test",
    "dbt_status": "fail",
    "dbt_test": "not_null_stg_orders_customer_id",
    "model": "stg_orders",
    "column": "customer_id",
    "failures": 1,
    "failing_rows_query": 'select * from "warehouse"."main"."stg_orders" where customer_id is null',
}


class TestDbtClassification:
    def test_a_failed_test_is_data_on_its_parent_model(self):
        """The test, its model, its failing-row count and the rows' query are kept."""
        found = classify_dbt("dbt test not_null_stg_orders_customer_id failed", TEST_FACTS)
        assert found is not None
        assert (found.error_code, found.category) == ("DBT_TEST_FAILED", Category.DATA)
        assert not found.recoverable
        assert found.context["model"] == "stg_orders"
        assert found.context["failures"] == 1
        assert "customer_id is null" in found.context["failing_rows_query"]
        assert found.priors[0].action == "fix_code_or_data"

    @pytest.mark.parametrize(
        ("message", "ref", "kind", "file"),
        [
            (MISSING_REF, "nonexistent", "ref", "models/bad.sql"),
            (MISSING_SOURCE, "raw.orders", "source", "models/staging/stg.sql"),
        ],
    )
    def test_a_missing_ref_is_a_dependency(self, message, ref, kind, file):
        """ref() or source() to a node that does not exist names it and the referring file."""
        found = classify_dbt(message, {"dbt_command": "build", "dbt_phase": "parse"})
        assert found is not None
        assert (found.error_code, found.category) == ("DBT_MISSING_REF", Category.DEPENDENCY)
        assert (found.context["missing_ref"], found.context["missing_kind"]) == (ref, kind)
        assert found.context["file"] == file

    def test_a_compilation_error_is_application_with_file_and_line(self):
        """Jinja that does not compile points at its model file and line."""
        found = classify_dbt(JINJA, {"dbt_command": "build"})
        assert found is not None
        assert (found.error_code, found.category) == ("DBT_COMPILATION_ERROR", Category.APPLICATION)
        assert (found.context["file"], found.context["line"]) == ("models/bad.sql", 4)
        assert found.context["model"] == "bad"

    def test_a_parsing_error_is_configuration_with_file_and_line(self):
        """Broken project YAML points at its file and line."""
        found = classify_dbt(PARSING, {"dbt_command": "build"})
        assert found is not None
        assert (found.error_code, found.category) == ("DBT_PARSING_ERROR", Category.CONFIGURATION)
        assert (found.context["file"], found.context["line"]) == ("staging/schema.yml", 5)

    def test_a_database_error_is_left_to_the_general_path(self):
        """The database's own error is not dbt's to classify."""
        assert classify_dbt(DATABASE, {"dbt_command": "build", "dbt_status": "error"}) is None

    def test_errors_of_other_jobs_are_not_dbt_errors(self):
        """Without a dbt job's facts, dbt-looking text is not classified as dbt."""
        assert classify_dbt(MISSING_REF, {"exit_code": 2}) is None

    def test_a_stored_record_goes_through_the_dbt_layer_first(self):
        """The analyzer's entry point gives the dbt code, keeping the run facts."""
        record = ErrorRecord(
            session_id="ses-000000000000",
            kind=FailureKind.EXIT_NONZERO,
            message=MISSING_REF,
            context={"dbt_command": "build", "exit_code": 2},
        )
        found = classify_record(record)
        assert (found.error_code, found.context["exit_code"]) == ("DBT_MISSING_REF", 2)


class TestLoadClassification:
    def test_bad_rows_are_data_with_their_lines(self):
        """A load's rejected rows give the file and every line number."""
        message = (
            "Command exited with code 3\n"
            "duckdb_load: 2 bad row(s) in data/orders.csv at line(s) 3, 5; nothing was loaded "
            "into orders\n  line 3: Could not convert string 'oops' to 'DOUBLE' | 2,c2,oops"
        )
        found = classify_load(message, {"exit_code": 3})
        assert found is not None
        assert (found.error_code, found.category) == ("LOAD_BAD_ROWS", Category.DATA)
        assert found.context["file"] == "data/orders.csv"
        assert (found.context["lines"], found.context["line"]) == ("3, 5", 3)
        assert found.context["bad_rows"] == 2

    def test_other_text_is_not_a_load_error(self):
        """Nothing else is mistaken for bad rows."""
        assert classify_load("Traceback ... ValueError", {}) is None
