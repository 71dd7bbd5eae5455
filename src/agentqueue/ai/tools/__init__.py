"""Tools the agent can call: a safe calculator and searches over a CSV dataset."""

from agentqueue.ai.tools.base import Tool, ToolError, ToolRegistry, ToolResult
from agentqueue.ai.tools.calculator import calculator_tool, evaluate, format_number
from agentqueue.ai.tools.dataset import (
    Dataset,
    DatasetError,
    dataset_tools,
    default_dataset_path,
    load_dataset,
)

__all__ = [
    "Dataset",
    "DatasetError",
    "Tool",
    "ToolError",
    "ToolRegistry",
    "ToolResult",
    "calculator_tool",
    "dataset_tools",
    "default_dataset_path",
    "evaluate",
    "format_number",
    "load_dataset",
]
