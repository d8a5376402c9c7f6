"""Reports from a results folder (Table 2, Figure 1, the paper's t-tests) and the RDRR statistic.

* :func:`write_report` — everything ``llm_unmask report`` writes;
* :func:`collect` — a results folder as classified rows, with incomplete/missing runs listed;
* :mod:`.codes` — Gray-code order and t-test comparison sets for any group count;
* :mod:`.rdrr` — the right-side dependency relations ratio of a task's training set.
"""

from .build import ReportResult, write_report
from .codes import comparison_set, gray_order, tested_configs
from .collect import Results, collect

__all__ = ["ReportResult", "Results", "collect", "comparison_set", "gray_order", "tested_configs", "write_report"]
