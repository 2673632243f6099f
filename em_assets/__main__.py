from em_assets.cli import main

raise SystemExit(main())
