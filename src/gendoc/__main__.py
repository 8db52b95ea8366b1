from gendoc.cli import main

raise SystemExit(main())
