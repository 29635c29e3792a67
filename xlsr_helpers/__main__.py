from xlsr_helpers.cli.main import main

raise SystemExit(main())
