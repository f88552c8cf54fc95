from cxr_model.cli import main

raise SystemExit(main())
