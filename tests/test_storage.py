"""The internal storage: kestra:/// URIs, Kestra's layout, atomic writes and traversal safety — the behaviour
tests run against both backends (a local folder and an S3 bucket on moto's server, tests/s3.py)."""
from __future__ import annotations

import os

import pytest

from falconet.runtime.kernel.errors import IllegalArgument, NotFound
from falconet.runtime.storage.internal import (
    InternalStorage, InvalidStoragePath, StorageError, StorageFileNotFound, namespace_path, slugify,
)


@pytest.fixture
def local(tmp_path):
    return InternalStorage(tmp_path / "storage")


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path):
    if request.param == "local":
        return InternalStorage(tmp_path / "storage")
    s3 = request.getfixturevalue("s3_settings")  # skips, saying why, without moto/boto3
    from falconet.runtime.storage.s3 import S3Storage

    return S3Storage(s3["bucket"], endpoint=s3["endpoint"], region=s3["region"], access_key=s3["access-key"],
                     secret_key=s3["secret-key"], prefix="falconet/data")


#### layout #################################################################################################

def test_slugify_like_kestra():
    assert slugify("hello") == "hello"
    assert slugify("Hello World") == "hello-world"
    assert slugify("my.flow_1") == "my-flow-1"
    assert slugify("each_split") == "each-split"
    assert slugify("Crème brûlée!") == "creme-brulee"
    assert slugify("--a  b--") == "a-b"


def test_prefixes(storage):
    assert namespace_path("company.team") == "company/team"
    assert storage.execution_prefix("company.team", "Hello", "EX1") == "/company/team/hello/executions/EX1"
    assert storage.task_prefix("company.team", "hello", "EX1", "My Task", "TR1") == \
        "/company/team/hello/executions/EX1/tasks/my-task/TR1"
    assert storage.input_prefix("a", "f", "EX1", "file") == "/a/f/executions/EX1/inputs/file"
    assert storage.trigger_prefix("a", "f", "EX1", "webhook") == "/a/f/executions/EX1/trigger/webhook"
    assert storage.namespace_files_prefix("a.b") == "/a/b/_files"
    assert storage.uri("/a/b/f.txt") == "kestra:///a/b/f.txt"
    assert storage.uri("a/b c.txt") == "kestra:///a/b%20c.txt"
    for bad in (("a..b", "f", "E"), ("a", "f", "../E"), ("a", "f", ""), ("a", "!!!", "E"), ("a/b", "f", "E")):
        with pytest.raises(InvalidStoragePath):
            storage.execution_prefix(*bad)


#### read / write ###########################################################################################

def test_put_bytes_read_size_exists_delete(storage):
    prefix = storage.task_prefix("company.team", "hello", "EX1", "t", "TR1")
    uri = storage.put_bytes(b"hello\n", prefix + "/out.txt")
    assert uri == "kestra:///company/team/hello/executions/EX1/tasks/t/TR1/out.txt"
    assert storage.read_text(uri) == "hello\n"
    assert storage.size(uri) == 6
    assert storage.exists(uri)
    with storage.open_read(uri) as f:
        assert f.read() == b"hello\n"
    storage.put_bytes(b"replaced", uri)  # a URI is accepted as destination too
    assert storage.read_text(uri) == "replaced"
    assert storage.delete(uri) is True
    assert storage.delete(uri) is False
    assert not storage.exists(uri)
    with pytest.raises(StorageFileNotFound):
        storage.read_text(uri)
    with pytest.raises(NotFound):  # maps to HTTP 404
        storage.size(uri)


def test_uri_with_spaces_roundtrips(storage):
    uri = storage.put_bytes(b"x", "/a/b c/d e.txt")
    assert uri == "kestra:///a/b%20c/d%20e.txt"
    assert storage.read_text(uri) == "x"
    assert storage.path(uri) == "/a/b c/d e.txt"


def test_local_path(local):
    uri = local.put_bytes(b"hello\n", "/a/b c/d e.txt")
    assert local.local_path(uri) == local.base_dir / "a/b c/d e.txt"


def test_put_file_copy_and_move(storage, tmp_path):
    src = tmp_path / "src.csv"
    src.write_text("a,b\n1,2\n")
    uri = storage.put_file(src, "/a/f/executions/E/inputs/data/src.csv")
    assert storage.read_text(uri) == "a,b\n1,2\n" and src.exists()
    uri2 = storage.put_file(src, "/a/f/executions/E/inputs/data/moved.csv", move=True)
    assert storage.read_text(uri2) == "a,b\n1,2\n" and not src.exists()
    with pytest.raises(StorageFileNotFound):
        storage.put_file(tmp_path / "missing", "/a/x")


def test_open_write_is_atomic_and_discarded_on_error(storage):
    dest = "/a/f/executions/E/tasks/t/TR/big.bin"
    with storage.open_write(dest) as f:
        f.write(b"part1")
        assert not storage.exists(storage.uri(dest))  # invisible until closed
        assert storage.list("/a") == []
        f.write(b"part2")
    assert storage.read_text(storage.uri(dest)) == "part1part2"
    with pytest.raises(RuntimeError):
        with storage.open_write(dest) as f:
            f.write(b"half")
            raise RuntimeError("task died")
    assert storage.read_text(storage.uri(dest)) == "part1part2"  # the old file survives
    assert storage.list("/a") == [storage.uri(dest)]


def test_local_writes_leave_no_temporary_file(local):
    dest = "/a/big.bin"
    with pytest.raises(RuntimeError):
        with local.open_write(dest) as f:
            f.write(b"half")
            raise RuntimeError("task died")
    local.put_bytes(b"x", dest)
    assert [p.name for p in local.local_path(local.uri(dest)).parent.iterdir()] == ["big.bin"]


def test_list_and_delete_prefix(storage):
    ex = storage.execution_prefix("a.b", "f", "E1")
    storage.put_bytes(b"1", ex + "/inputs/i/x.txt")
    storage.put_bytes(b"2", ex + "/tasks/t/TR/y.txt")
    storage.put_bytes(b"3", storage.execution_prefix("a.b", "f", "E2") + "/z.txt")
    assert storage.list(ex) == [
        "kestra:///a/b/f/executions/E1/inputs/i/x.txt",
        "kestra:///a/b/f/executions/E1/tasks/t/TR/y.txt",
    ]
    assert storage.list("/nothing/here") == []
    assert storage.delete_prefix(ex) == 2
    assert storage.list(ex) == []
    assert len(storage.list("/a")) == 1
    assert storage.delete_prefix(ex) == 0
    with pytest.raises(InvalidStoragePath):
        storage.delete_prefix("/")
    with pytest.raises(InvalidStoragePath):
        storage.delete(storage.uri("/a/b"))  # a folder


def test_is_under_is_segment_wise(storage):
    ex = storage.execution_prefix("a", "f", "E1")
    assert storage.is_under("kestra:///a/f/executions/E1/tasks/t/x", ex)
    assert storage.is_under("kestra:///a/f/executions/E1", ex)
    assert not storage.is_under("kestra:///a/f/executions/E10/x", ex)
    assert not storage.is_under("kestra:///a/f/executions/E2/x", ex)
    with pytest.raises(InvalidStoragePath):
        storage.is_under("kestra:///a/f/executions/E1/../E2/x", ex)


#### traversal ##############################################################################################

@pytest.mark.parametrize("uri", [
    "kestra:///../etc/passwd",
    "kestra:///a/../../etc/passwd",
    "kestra:///a/%2e%2e/%2E%2E/etc/passwd",
    "kestra:///a/%2e%2e%2fb",            # encoded slash: decodes to a/../b
    "kestra:///a/./b",
    "kestra:///a/b\x00.txt",
    "kestra:///a/b%00.txt",
    "kestra://host/a/b",                 # authority
    "file:///etc/passwd",
    "/etc/passwd",                       # not a URI
    "kestra:///a?x=1",
])
def test_bad_uris_are_rejected(storage, uri):
    with pytest.raises(InvalidStoragePath) as info:
        storage.exists(uri)
    assert isinstance(info.value, IllegalArgument) and isinstance(info.value, StorageError)
    with pytest.raises(StorageError):
        storage.read_text(uri)


@pytest.mark.parametrize("path", ["/../outside.txt", "a/../../outside.txt", "/a/..", "a/b\x00"])
def test_bad_destination_paths_are_rejected(storage, path):
    with pytest.raises(InvalidStoragePath):
        storage.put_bytes(b"x", path)
    assert storage.list("/") == []


def test_absolute_looking_paths_stay_inside(storage):
    uri = storage.put_bytes(b"x", "//etc//passwd")
    assert uri == "kestra:///etc/passwd"
    assert storage.list("/") == [uri] and storage.read_text(uri) == "x"


def test_symlinks_pointing_outside_are_refused(local, tmp_path):
    storage = local
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    os.symlink(outside, storage.base_dir / "link")
    os.symlink(outside / "secret.txt", storage.base_dir / "file-link")
    for uri in ("kestra:///link/secret.txt", "kestra:///file-link"):
        with pytest.raises(InvalidStoragePath):
            storage.read_text(uri)
    with pytest.raises(InvalidStoragePath):
        storage.put_bytes(b"pwned", "/link/new.txt")
    assert not (outside / "new.txt").exists()
    with pytest.raises(InvalidStoragePath):
        storage.delete_prefix("/link")
    assert (outside / "secret.txt").read_text() == "secret"


def test_symlinks_inside_the_storage_are_fine(local):
    storage = local
    storage.put_bytes(b"data", "/real/x.txt")
    os.symlink(storage.base_dir / "real", storage.base_dir / "alias")
    assert storage.read_text("kestra:///alias/x.txt") == "data"


async def test_async_wrappers(storage, tmp_path):
    uri = await storage.put_bytes_async(b"async", "/a/b.txt")
    assert await storage.read_text_async(uri) == "async"
    assert await storage.read_bytes_async(uri) == b"async"
    src = tmp_path / "s.txt"
    src.write_text("s")
    assert await storage.read_text_async(await storage.put_file_async(src, "/a/s.txt")) == "s"
    assert await storage.delete_prefix_async("/a") == 2


#### folders, copies, local files ###########################################################################

def test_folders_attributes_and_listing(storage):
    storage.make_dir("/ns/_files/empty")
    storage.put_bytes(b"abc", "/ns/_files/dir/a.txt")
    assert storage.is_dir("/ns/_files/empty") and storage.is_dir("/ns/_files/dir") and storage.is_dir("/")
    assert not storage.is_dir("/ns/_files/dir/a.txt") and not storage.is_dir("/ns/_files/none")
    children = storage.list_dir("/ns/_files")
    assert [(c["fileName"], c["type"], c["size"]) for c in children] == [
        ("dir", "Directory", 0), ("empty", "Directory", 0)]
    [file] = storage.list_dir("/ns/_files/dir")
    assert (file["fileName"], file["type"], file["size"]) == ("a.txt", "File", 3)
    assert file["lastModifiedTime"] > 0
    attributes = storage.attributes("/ns/_files/dir/a.txt")
    assert (attributes["fileName"], attributes["type"], attributes["size"]) == ("a.txt", "File", 3)
    assert storage.attributes("/ns/_files/dir")["type"] == "Directory"
    assert storage.list("/ns") == ["kestra:///ns/_files/dir/a.txt"]  # folders are not files
    with pytest.raises(StorageFileNotFound):
        storage.attributes("/ns/_files/none")
    with pytest.raises(StorageFileNotFound):
        storage.list_dir("/ns/_files/dir/a.txt")
    with pytest.raises(InvalidStoragePath):
        storage.make_dir("/ns/_files/dir/a.txt")
    with pytest.raises(InvalidStoragePath):
        storage.put_bytes(b"x", "/ns/_files/dir")  # a folder
    assert storage.delete_prefix("/ns/_files") == 1
    assert not storage.is_dir("/ns/_files/empty")


def test_move_and_copy(storage):
    storage.put_bytes(b"1", "/m/src/a.txt")
    storage.put_bytes(b"2", "/m/src/sub/b.txt")
    storage.move("/m/src", "/m/dest")
    assert storage.list("/m") == ["kestra:///m/dest/a.txt", "kestra:///m/dest/sub/b.txt"]
    storage.move("/m/dest/a.txt", "/m/other/a2.txt")
    assert storage.read_text("kestra:///m/other/a2.txt") == "1"
    with pytest.raises(StorageFileNotFound):
        storage.move("/m/src", "/m/x")
    with pytest.raises(InvalidStoragePath):
        storage.move("/m/dest", "/m/other")  # exists
    with pytest.raises(InvalidStoragePath):
        storage.move("/m/dest", "/m/dest/inner")
    uri = storage.copy("kestra:///m/other/a2.txt", "/m/copy.txt")
    assert storage.read_text(uri) == "1" and storage.read_text("kestra:///m/other/a2.txt") == "1"
    with pytest.raises(StorageFileNotFound):
        storage.copy("kestra:///m/none", "/m/copy2.txt")


def test_local_file_and_seekable_reads(storage, tmp_path):
    uri = storage.put_bytes(b"0123456789", "/r/data.bin")
    with storage.local_file(uri, tmp_path) as path:
        assert path.read_bytes() == b"0123456789"
    with pytest.raises(StorageFileNotFound):
        with storage.local_file("kestra:///r/none", tmp_path):
            pass
    with storage.open_read(uri) as f:
        assert f.read(4) == b"0123"
        f.seek(0)
        assert f.read(2) == b"01"
        f.seek(7)
        assert f.read() == b"789"
        f.seek(0)
        assert f.readline() == b"0123456789"


def test_big_files_stream_in_parts(storage, tmp_path):
    block = os.urandom(1 << 20)
    dest = "/big/streamed.bin"
    with storage.open_write(dest) as f:
        for _ in range(9):  # over the 8 MiB multipart threshold of the S3 backend
            f.write(block)
    uri = storage.uri(dest)
    assert storage.size(uri) == 9 << 20
    with storage.open_read(uri) as f:
        assert f.read(1 << 20) == block
        f.seek((8 << 20) + 5)
        assert f.read() == block[5:]
    src = tmp_path / "big.bin"
    src.write_bytes(block * 9)
    assert storage.size(storage.put_file(src, "/big/uploaded.bin", move=True)) == 9 << 20 and not src.exists()


def test_s3_keys_stay_under_the_prefix(s3_settings):
    import boto3

    from falconet.runtime.storage.s3 import S3Storage

    s3 = s3_settings
    client = boto3.client("s3", endpoint_url=s3["endpoint"], region_name=s3["region"],
                          aws_access_key_id=s3["access-key"], aws_secret_access_key=s3["secret-key"])
    client.put_object(Bucket=s3["bucket"], Key="outside.txt", Body=b"secret")
    client.put_object(Bucket=s3["bucket"], Key="tenant/a/../x.txt", Body=b"odd key")
    storage = S3Storage(s3["bucket"], endpoint=s3["endpoint"], region=s3["region"], access_key=s3["access-key"],
                        secret_key=s3["secret-key"], prefix="/tenant/")
    storage.put_bytes(b"in", "//etc//passwd")
    for bad in ("kestra:///../outside.txt", "kestra:///a/%2e%2e/%2e%2e/outside.txt"):
        with pytest.raises(InvalidStoragePath):
            storage.read_text(bad)
    assert not storage.exists("kestra:///outside.txt")
    assert storage.list("/") == ["kestra:///etc/passwd"]  # the odd key written by another tool is skipped
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=s3["bucket"])["Contents"])
    assert keys == ["outside.txt", "tenant/a/../x.txt", "tenant/etc/passwd"]
    with pytest.raises(InvalidStoragePath):
        S3Storage(s3["bucket"], endpoint=s3["endpoint"], prefix="a/../b")
