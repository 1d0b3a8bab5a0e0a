"""The IH5 bytes: user blocks, patch markers, file names and chain rules (no HDF5 views).

Names are imported on first use (PEP 562): the naming rules load without pydantic
or h5py, so that the command line starts light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ih5._lazy import lazy_names

if TYPE_CHECKING:
    from ih5.format._chain import (
        USER_BLOCKS,
        ContainerRef,
        ContainerSource,
        check_hashsums,
        load_refs,
        split_uncommitted,
        validate_chain,
    )
    from ih5.format._extensions import (
        MANIFEST_EXT,
        inheritable_exts,
        is_stub_container,
        named_manifest_hashsum,
    )
    from ih5.format._markers import (
        DEL_VALUE,
        SUBST_ATTR,
        check_attr_name,
        check_user_value,
        is_deletion_marker,
        is_substituting,
        mark_substituting,
        write_attr_deletion_marker,
        write_deletion_marker,
    )
    from ih5.format._naming import (
        CONTAINER_SUFFIX,
        MANIFEST_SUFFIX,
        RECORD_NAME,
        container_name,
        discover_containers,
        list_containers,
        manifest_name,
        parse_container_name,
        split_record_path,
        validate_record_name,
    )
    from ih5.format._userblock import (
        HDF5_SIGNATURE,
        MAGIC,
        MAX_USER_BLOCK_SIZE,
        MIN_USER_BLOCK_SIZE,
        USER_BLOCK_SIZE,
        BinaryReadable,
        IH5UserBlock,
        encode_user_block,
        hashsum_container,
        read_user_block,
        read_user_block_from,
        read_user_block_with_size,
        write_user_block,
    )

__all__ = [
    "CONTAINER_SUFFIX",
    "DEL_VALUE",
    "HDF5_SIGNATURE",
    "MAGIC",
    "MANIFEST_EXT",
    "MANIFEST_SUFFIX",
    "MAX_USER_BLOCK_SIZE",
    "MIN_USER_BLOCK_SIZE",
    "RECORD_NAME",
    "SUBST_ATTR",
    "USER_BLOCKS",
    "USER_BLOCK_SIZE",
    "BinaryReadable",
    "ContainerRef",
    "ContainerSource",
    "IH5UserBlock",
    "check_attr_name",
    "check_hashsums",
    "check_user_value",
    "container_name",
    "discover_containers",
    "encode_user_block",
    "hashsum_container",
    "inheritable_exts",
    "is_deletion_marker",
    "is_stub_container",
    "is_substituting",
    "list_containers",
    "load_refs",
    "manifest_name",
    "mark_substituting",
    "named_manifest_hashsum",
    "parse_container_name",
    "read_user_block",
    "read_user_block_from",
    "read_user_block_with_size",
    "split_record_path",
    "split_uncommitted",
    "validate_chain",
    "validate_record_name",
    "write_attr_deletion_marker",
    "write_deletion_marker",
    "write_user_block",
]

_SOURCES = {
    "ContainerRef": "ih5.format._chain",
    "check_hashsums": "ih5.format._chain",
    "load_refs": "ih5.format._chain",
    "split_uncommitted": "ih5.format._chain",
    "validate_chain": "ih5.format._chain",
    "DEL_VALUE": "ih5.format._markers",
    "SUBST_ATTR": "ih5.format._markers",
    "check_attr_name": "ih5.format._markers",
    "check_user_value": "ih5.format._markers",
    "is_deletion_marker": "ih5.format._markers",
    "is_substituting": "ih5.format._markers",
    "mark_substituting": "ih5.format._markers",
    "write_attr_deletion_marker": "ih5.format._markers",
    "write_deletion_marker": "ih5.format._markers",
    "CONTAINER_SUFFIX": "ih5.format._naming",
    "MANIFEST_SUFFIX": "ih5.format._naming",
    "RECORD_NAME": "ih5.format._naming",
    "container_name": "ih5.format._naming",
    "discover_containers": "ih5.format._naming",
    "list_containers": "ih5.format._naming",
    "manifest_name": "ih5.format._naming",
    "parse_container_name": "ih5.format._naming",
    "split_record_path": "ih5.format._naming",
    "validate_record_name": "ih5.format._naming",
    "HDF5_SIGNATURE": "ih5.format._userblock",
    "MAGIC": "ih5.format._userblock",
    "MAX_USER_BLOCK_SIZE": "ih5.format._userblock",
    "MIN_USER_BLOCK_SIZE": "ih5.format._userblock",
    "USER_BLOCK_SIZE": "ih5.format._userblock",
    "BinaryReadable": "ih5.format._userblock",
    "IH5UserBlock": "ih5.format._userblock",
    "encode_user_block": "ih5.format._userblock",
    "hashsum_container": "ih5.format._userblock",
    "read_user_block": "ih5.format._userblock",
    "read_user_block_from": "ih5.format._userblock",
    "read_user_block_with_size": "ih5.format._userblock",
    "write_user_block": "ih5.format._userblock",
    "ContainerSource": "ih5.format._chain",
    "USER_BLOCKS": "ih5.format._chain",
    "MANIFEST_EXT": "ih5.format._extensions",
    "inheritable_exts": "ih5.format._extensions",
    "is_stub_container": "ih5.format._extensions",
    "named_manifest_hashsum": "ih5.format._extensions",
}


__getattr__, __dir__ = lazy_names(__name__, _SOURCES, __all__, globals())
