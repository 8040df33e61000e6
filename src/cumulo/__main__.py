from cumulo.cli.main import main

raise SystemExit(main())
