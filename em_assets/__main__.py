import sys

if len(sys.argv) > 1 and sys.argv[1] == "sql":
    # The query command imports no Dagster: it starts in a fraction of a second.
    from em_assets.sql_command import main as sql_main

    raise SystemExit(sql_main(sys.argv[2:]))

from em_assets.cli import main

raise SystemExit(main())
