"""STB and RHD (single-hand sets of the InterNet paper's Table 5) in the parsed format of the
official InterNet release: loader and columnar index (`parsed`), joint orders (`joints`),
converters from the original releases (`originals`), the format writer (`writer`).
See docs/STB_RHD.md for what is verified against the official code and what is inferred.
"""

from __future__ import annotations

from dir_net.data.stb_rhd.parsed import DATASETS, ParsedFiles, build_stb_rhd_dataset, locate, open_parsed_index

__all__ = ["DATASETS", "ParsedFiles", "build_stb_rhd_dataset", "locate", "open_parsed_index"]
