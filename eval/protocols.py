"""Named evaluation protocols for two-hand 3D pose and mesh accuracy.

The same predictions score very differently under different protocols (root joint, scale
correction, validity masking, averaging order), so every number this toolkit reports is tied
to one of the protocols defined here. See docs/EVALUATION.md for what each paper reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mano.joints import MIDDLE_MCP, NUM_JOINTS, WRIST  # wrist-first order: 0 and 9, 21 joints

Averaging = Literal["per_joint", "per_sample", "pooled", "per_joint_pooled"]
AVERAGINGS = ("per_joint", "per_sample", "pooled", "per_joint_pooled")


@dataclass(frozen=True)
class Protocol:
    """How predicted hands are aligned to ground truth and how errors are averaged.

    root:      joint index (wrist-first) subtracted from each hand of both pred and GT.
    scale:     scale each predicted hand about its root by |J9-J0|gt / |J9-J0|pred.
    masking:   count only joints with `joint_valid` in hands whose root (and, when scaling,
               wrist and middle MCP) is valid; otherwise every joint of every present hand counts.
    averaging: "per_joint": mean over samples for each of the 42 joints, then the mean over
               joints; "per_sample": mean over samples and joints for each hand, then the mean
               over the two hands; "pooled": one mean over every counted (sample, hand, joint);
               "per_joint_pooled": mean over samples and both hands for each of the 21 joints,
               then the mean over joints (STB / RHD official evaluation, eval/epe.py).
    root_required: under masking a hand counts only when its root is valid; False: every valid
               joint counts and the root is subtracted whatever its flag (STB / RHD official).
    subsets:   also report MPJPE on single-hand and interacting frames.
    """

    name: str
    root: int
    scale: bool
    masking: bool
    averaging: Averaging
    subsets: bool = False
    reported_by: str = ""
    root_required: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.root < NUM_JOINTS:
            raise ValueError(f"protocol {self.name!r}: root joint {self.root} is not in 0..20")
        if self.averaging not in AVERAGINGS:
            raise ValueError(
                f"protocol {self.name!r}: averaging must be one of {', '.join(AVERAGINGS)}, "
                f"got {self.averaging!r}"
            )

    def required_joints(self) -> tuple[int, ...]:
        """Joints that must be valid for a hand to count under masking."""
        joints = {self.root, WRIST, MIDDLE_MCP} if self.scale else {self.root}
        return tuple(sorted(joints)) if self.root_required or self.scale else ()


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol(
            "moon", root=WRIST, scale=False, masking=True, averaging="per_joint", subsets=True,
            reported_by="InterHand2.6M / InterNet official code (Moon et al. 2020)",
        ),
        Protocol(
            "mmpose", root=WRIST, scale=False, masking=True, averaging="pooled", subsets=True,
            reported_by="mmpose InterHand3D (keypoint_epe over all valid joints; InterNet model card)",
        ),
        Protocol(
            "epe", root=WRIST, scale=False, masking=True, averaging="per_joint_pooled", root_required=False,
            reported_by="InterNet paper Table 5 (STB, RHD; official STB/RHD evaluate), see eval/epe.py",
        ),
        Protocol(
            "wrist_scaled", root=WRIST, scale=True, masking=False, averaging="per_sample",
            reported_by="DIR Table 2 (Ren et al. 2023)",
        ),
        Protocol(
            "mcp_scaled", root=MIDDLE_MCP, scale=True, masking=False, averaging="per_sample",
            reported_by="IntagHand MPJPE-MS; DIR Table 3; ACR, 4DHands",
        ),
        Protocol(
            "mcp", root=MIDDLE_MCP, scale=False, masking=False, averaging="per_sample",
            reported_by="DIR Table 3 MPJPE-M",
        ),
    )
}


def get_protocol(protocol: str | Protocol) -> Protocol:
    """Look up a protocol by name (or pass a Protocol through)."""
    if isinstance(protocol, Protocol):
        return protocol
    try:
        return PROTOCOLS[protocol]
    except KeyError:
        raise ValueError(
            f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}"
        ) from None
