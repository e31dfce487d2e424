import pytest

pytestmark = pytest.mark.django_db

JANE = {"name": "Jane Doe", "code": "JD-1", "phone_number": "0712 345 678"}


def test_create_returns_201_location_and_the_read_model(api):
    response = api.post("customers/", JANE)
    assert response.status_code == 201, response.content
    body = response.json()
    assert response["Location"] == f"/api/v1/customers/{body['id']}/"
    assert body["phone_number"] == "+254712345678"
    assert (
        body["order_count"] == 0
        and body["total_amount"] == "0.00"
        and body["last_order_at"] is None
    )
    assert body["created_at"].endswith("Z")
    assert api.get(f"customers/{body['id']}/").json() == body


def test_put_needs_every_field_and_patch_any_subset(api):
    cid = api.post("customers/", JANE).json()["id"]
    missing = api.call("PUT", f"customers/{cid}/", {"name": "X"})
    assert missing.status_code == 422
    assert {tuple(e["loc"]) for e in missing.json()["errors"]} == {
        ("body", "code"),
        ("body", "phone_number"),
    }
    replaced = api.call(
        "PUT",
        f"customers/{cid}/",
        {"name": "Jane B", "code": "JB", "phone_number": "+254700000001"},
    )
    assert replaced.status_code == 200 and replaced.json()["code"] == "JB"
    patched = api.call("PATCH", f"customers/{cid}/", {"name": "Jane C"})
    assert patched.status_code == 200
    assert (patched.json()["name"], patched.json()["code"]) == ("Jane C", "JB")
    assert api.call("PATCH", f"customers/{cid}/", {}).status_code == 200


def test_patch_null_is_refused(api):
    cid = api.post("customers/", JANE).json()["id"]
    response = api.call("PATCH", f"customers/{cid}/", {"name": None})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "name"]


def test_delete_then_404_and_code_reuse(api):
    cid = api.post("customers/", JANE).json()["id"]
    assert api.call("DELETE", f"customers/{cid}/").status_code == 204
    assert api.get(f"customers/{cid}/").status_code == 404
    assert api.post("customers/", {**JANE, "code": "jd-1"}).status_code == 201


def test_list_pages_and_filters(api):
    for i in range(5):
        api.post("customers/", {**JANE, "code": f"C{i}", "name": f"Name {i}"})
    first = api.get("customers/?limit=2").json()
    assert [c["code"] for c in first["items"]] == ["C0", "C1"]
    second = api.get(f"customers/?limit=2&cursor={first['next_cursor']}").json()
    assert [c["code"] for c in second["items"]] == ["C2", "C3"]
    assert api.get("customers/?code=c4").json()["items"][0]["code"] == "C4"
    assert len(api.get("customers/?search=name").json()["items"]) == 5
    last = api.get("customers/?limit=200").json()
    assert last["next_cursor"] is None and len(last["items"]) == 5
