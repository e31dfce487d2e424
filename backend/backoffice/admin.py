"""The back-office screens (docs/backoffice.md).

Every change goes through the command handlers the API uses (customers, SMS resend, webhook
endpoints) or the issuer's client functions, never through `Model.save()` here, so read models,
the outbox, webhook events and metrics stay right. Every change is an admin `LogEntry` (who,
what, when): in each object's History and in the read-only audit log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.models import DELETION
from django.contrib.admin.options import csrf_protect_m
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.db.models import F, Model, OuterRef, QuerySet, Subquery
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html, format_html_join
from oauth2_provider import models as oauth2_models

from backend.backoffice.forms import CUSTOMER_FIELDS, ApiClientForm, CustomerForm
from backend.backoffice.models import ApiClient, AuditEntry, Customer, Order, WebhookEndpoint
from backend.commands import customers, orders, webhook_endpoints
from backend.commands.models import SmsNotification, SmsStatus, WebhookDelivery
from backend.errors import DomainError
from backend.issuer import clients
from backend.issuer.models import ClientScopes
from backend.queries.models import CustomerView

admin.site.site_header = "Duka back-office"
admin.site.site_title = "Duka back-office"
admin.site.index_title = "Shop operations"
admin.site.site_url = None  # the service has no web site to link to
# The admin's login page plus the "Sign in with <issuer>" button and the attempt-limit notice
# (backend/backoffice/signin); this app comes after django.contrib.admin, so a template of the
# same name would not win.
admin.site.login_template = "backoffice/login.html"

# django-oauth-toolkit's own screens would edit clients and tokens past backend/issuer/clients.py
# (a secret typed into a form field, scopes not registered): the "API clients" screen replaces them.
for _model in (
    oauth2_models.get_application_model(),
    oauth2_models.get_access_token_model(),
    oauth2_models.get_refresh_token_model(),
    oauth2_models.get_id_token_model(),
    oauth2_models.get_grant_model(),
):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)

RECENT_DELIVERIES = 20


def _has_perm(request: HttpRequest, model_admin: admin.ModelAdmin, action: str) -> bool:
    opts = model_admin.opts
    return request.user.has_perm(f"{opts.app_label}.{get_permission_codename(action, opts)}")


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "-"


def _table(headers: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    head = format_html_join("", "<th>{}</th>", ((h,) for h in headers))
    body = format_html_join(
        "",
        "<tr>{}</tr>",
        ((format_html_join("", "<td>{}</td>", ((cell,) for cell in row)),) for row in rows),
    )
    return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, body)


class ActionsOnlyAdmin(admin.ModelAdmin):
    """A screen that is read-only as a form; its changes are the actions, which need the model's
    `change` permission (the operator role), checked by `has_operate_permission`."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_operate_permission(self, request: HttpRequest) -> bool:
        return _has_perm(request, self, "change")

    def run_each(
        self,
        request: HttpRequest,
        queryset: QuerySet,
        command: Callable[[Any], str | None],
        *,
        done: str,
    ) -> None:
        """`command(obj)` for each selected object, each in its own transaction (a handler's);
        what it returns is the audit entry (None: nothing changed, no entry). Refusals (a
        `DomainError`) are reported and do not stop the others; `done` heads the count."""
        changed = selected = 0
        for obj in queryset:
            selected += 1
            try:
                change = command(obj)
            except DomainError as exc:
                self.message_user(request, f"{obj}: {exc}", messages.ERROR)
                continue
            if change is not None:
                self.log_change(request, obj, change)
                changed += 1
        if changed:
            self.message_user(request, f"{done}: {changed} of {selected}.", messages.SUCCESS)


# --- Orders ---------------------------------------------------------------------------------------


class SmsStatusFilter(admin.SimpleListFilter):
    title = "SMS status"
    parameter_name = "sms_status"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return list(SmsStatus.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(sms_status=self.value()) if self.value() else queryset


class CustomerFilter(admin.SimpleListFilter):
    """`?customer=<id>` (the customers screen links to it). Only the chosen customer is listed:
    a list of every customer would not fit the sidebar; search finds one by code or name."""

    title = "customer"
    parameter_name = "customer"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        # Django applies a filter only while it offers a choice, so the chosen value always is one.
        value = self.value()
        if not value:
            return []
        customer_id = self.customer_id()
        found = CustomerView.objects.filter(pk=customer_id).first() if customer_id else None
        return [(value, f"{found.code} ({found.name})" if found else "no such customer")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        customer_id = self.customer_id()  # called only while a value is chosen (lookups above)
        return queryset.filter(customer_id=customer_id) if customer_id else queryset.none()

    def customer_id(self) -> int | None:
        """The chosen id when it can be one (a bigint), else None."""
        value = self.value() or ""
        return int(value) if value.isdigit() and len(value) <= 18 else None


@admin.register(Order)
class OrderAdmin(ActionsOnlyAdmin):
    list_display = (
        "id",
        "time",
        "customer_code",
        "customer_name",
        "item",
        "amount",
        "sms_status",
        "sms_error",
    )
    list_filter = (SmsStatusFilter, CustomerFilter, ("time", admin.DateFieldListFilter))
    search_fields = ("=customer_code", "customer_name")
    search_help_text = "Customer code (exact, any case) or part of the customer's name."
    show_full_result_count = False  # one COUNT over the order list per page, not two
    list_per_page = 50
    actions = ("resend_sms",)
    fieldsets = (
        (None, {"fields": ("id", "time", "customer", "item", "amount", "note")}),
        (
            "SMS",
            {"fields": ("status", "error", "sms_recipient", "sms_text", "sms_delivery")},
        ),
        ("Webhook events", {"fields": ("webhook_events",)}),
    )
    readonly_fields = (
        "customer",
        "status",
        "error",
        "sms_recipient",
        "sms_text",
        "sms_delivery",
        "webhook_events",
    )

    def _sms(self, order: Order) -> SmsNotification | None:
        if not hasattr(order, "_backoffice_sms"):
            order._backoffice_sms = SmsNotification.objects.filter(order_id=order.pk).first()
        return order._backoffice_sms

    @admin.display(description="customer")
    def customer(self, order: Order) -> str:
        url = reverse("admin:backoffice_customer_change", args=[order.customer_id])
        return format_html(
            '<a href="{}">{} ({})</a>', url, order.customer_code, order.customer_name
        )

    @admin.display(description="status")
    def status(self, order: Order) -> str:
        return order.sms_status

    @admin.display(description="error (sms_error)")
    def error(self, order: Order) -> str:
        return order.sms_error or "-"

    @admin.display(description="recipient")
    def sms_recipient(self, order: Order) -> str:
        sms = self._sms(order)
        return sms.recipient if sms else "-"

    @admin.display(description="text")
    def sms_text(self, order: Order) -> str:
        sms = self._sms(order)
        return sms.text if sms else "No SMS was queued for this order (demo data)."

    @admin.display(description="delivery")
    def sms_delivery(self, order: Order) -> str:
        sms = self._sms(order)
        if sms is None:
            return "-"
        return _table(
            (
                "attempts",
                "first attempt",
                "sent",
                "last change",
                "gateway id",
                "cost",
                "last error",
            ),
            [
                (
                    sms.attempts,
                    _when(sms.first_attempt_at),
                    _when(sms.sent_at),
                    _when(sms.updated_at),
                    sms.gateway_message_id or "-",
                    sms.cost or "-",
                    sms.last_error or "-",
                )
            ],
        )

    @admin.display(description="events")
    def webhook_events(self, order: Order) -> str:
        rows = WebhookDelivery.objects.filter(subject=f"order:{order.pk}").order_by("-id")
        rows = rows[:RECENT_DELIVERIES]
        if not rows:
            return "None (no endpoint subscribed, or purged after WEBHOOK_RETENTION_SECONDS)."
        return _table(
            ("event", "endpoint", "status", "attempts", "written", "last error"),
            [
                (
                    r.event_type,
                    r.endpoint_id,
                    r.status,
                    r.attempts,
                    _when(r.created_at),
                    r.last_error,
                )
                for r in rows
            ],
        )

    def get_urls(self) -> list[URLPattern]:
        resend = path(
            "<int:order_id>/resend-sms/",
            self.admin_site.admin_view(self.resend_view),
            name="backoffice_order_resend_sms",
        )
        return [resend, *super().get_urls()]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        context = {**(extra_context or {}), "can_resend": self.has_operate_permission(request)}
        return super().change_view(request, object_id, form_url, context)

    def resend_view(self, request: HttpRequest, order_id: int) -> HttpResponse:
        """The order page's "Send the SMS again" button: the list action for this one order."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_operate_permission(request):
            raise PermissionDenied
        self.resend_sms(request, self.get_queryset(request).filter(pk=order_id))
        return HttpResponseRedirect(reverse("admin:backoffice_order_change", args=[order_id]))

    @admin.action(description="Send the SMS again (failed ones)", permissions=["operate"])
    def resend_sms(self, request: HttpRequest, queryset: QuerySet) -> None:
        def resend(order: Order) -> str:
            orders.resend_order_sms(orders.ResendOrderSms(order_id=order.pk))
            return "Sent the SMS again."

        self.run_each(request, queryset, resend, done="SMS queued again")


# --- Customers ------------------------------------------------------------------------------------


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    """Create, edit and delete through backend/commands/customers.py; the handler runs inside
    the transaction Django's admin wraps each form in, so the change and its audit entry
    commit together."""

    form = CustomerForm
    list_display = ("code", "name", "phone_number", "order_count", "updated_at", "orders_link")
    search_fields = ("code", "name")
    search_help_text = "Part of the code or the name."
    list_per_page = 50
    fieldsets = (
        (None, {"fields": CUSTOMER_FIELDS}),
        ("Orders", {"fields": ("order_summary",)}),
        ("Record", {"fields": ("created_at", "updated_at")}),
    )
    readonly_fields = ("order_summary", "created_at", "updated_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        counts = CustomerView.objects.filter(pk=OuterRef("pk")).values("order_count")
        return super().get_queryset(request).annotate(orders_placed=Subquery(counts))

    def get_fieldsets(self, request: HttpRequest, obj: Model | None = None) -> Any:
        return self.fieldsets if obj is not None else self.fieldsets[:1]

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # one at a time, through the delete view
        return actions

    @admin.display(description="orders", ordering="orders_placed")
    def order_count(self, customer: Customer) -> int:
        return customer.orders_placed or 0

    @admin.display(description="")
    def orders_link(self, customer: Customer) -> str:
        url = reverse("admin:backoffice_order_changelist") + f"?customer={customer.pk}"
        return format_html('<a href="{}">orders</a>', url)

    @admin.display(description="orders")
    def order_summary(self, customer: Customer) -> str:
        view = CustomerView.objects.filter(pk=customer.pk).first()
        if view is None or not view.order_count:
            return "No orders."
        url = reverse("admin:backoffice_order_changelist") + f"?customer={customer.pk}"
        return format_html(
            '<a href="{}">{} orders</a>, {} in all, the last at {}',
            url,
            view.order_count,
            view.total_amount,
            _when(view.last_order_at),
        )

    @csrf_protect_m
    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as exc:  # lost a race after the form's checks: nothing was written
            self.message_user(request, str(exc), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    @csrf_protect_m
    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        try:
            return super().delete_view(request, object_id, extra_context)
        except DomainError as exc:  # e.g. an order was placed since the confirmation page
            self.message_user(request, str(exc), messages.ERROR)
            url = reverse("admin:backoffice_customer_change", args=[object_id])
            return HttpResponseRedirect(url)

    def save_model(
        self, request: HttpRequest, obj: Customer, form: ModelForm, change: bool
    ) -> None:
        data = form.cleaned_data
        if not change:
            obj.pk = customers.create_customer(
                customers.CreateCustomer(
                    name=data["name"], code=data["code"], phone_number=data["phone_number"]
                )
            )
        elif form.changed_data:
            fields = {name: data[name] for name in form.changed_data if name in CUSTOMER_FIELDS}
            customers.patch_customer(customers.PatchCustomer(customer_id=obj.pk, **fields))
        obj.refresh_from_db()
        obj._state.adding = False

    def delete_model(self, request: HttpRequest, obj: Customer) -> None:
        customers.delete_customer(customers.DeleteCustomer(customer_id=obj.pk))


# --- Webhook endpoints ----------------------------------------------------------------------------


class DeletedFilter(admin.SimpleListFilter):
    title = "deleted"
    parameter_name = "deleted"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("no", "No"), ("yes", "Yes")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in {"no", "yes"}:
            return queryset.filter(deleted_at__isnull=self.value() == "no")
        return queryset


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ActionsOnlyAdmin):
    list_display = (
        "id",
        "url",
        "owner",
        "enabled",
        "disabled_reason",
        "last_error_short",
        "last_attempt_at",
        "deleted_at",
    )
    list_filter = ("enabled", DeletedFilter)
    search_fields = ("url", "owner", "description")
    actions = ("enable_again", "send_ping")
    # Never the secret (shown once to the API caller that created the endpoint).
    fieldsets = (
        (None, {"fields": ("url", "owner", "description", "events", "created_at", "deleted_at")}),
        (
            "Status",
            {
                "fields": (
                    "enabled",
                    "disabled_reason",
                    "last_error",
                    "last_attempt_at",
                    "failing_since",
                )
            },
        ),
        ("Recent deliveries", {"fields": ("recent_deliveries",)}),
    )
    readonly_fields = ("recent_deliveries",)

    @admin.display(description="last error")
    def last_error_short(self, endpoint: WebhookEndpoint) -> str:
        error = endpoint.last_error
        return error if len(error) <= 80 else error[:79] + "…"

    @admin.display(description=f"last {RECENT_DELIVERIES}")
    def recent_deliveries(self, endpoint: WebhookEndpoint) -> str:
        rows = WebhookDelivery.objects.filter(endpoint_id=endpoint.pk).order_by("-id")
        rows = rows[:RECENT_DELIVERIES]
        if not rows:
            return "None yet (or purged after WEBHOOK_RETENTION_SECONDS)."
        return _table(
            ("event", "subject", "status", "attempts", "written", "delivered", "last error"),
            [
                (
                    r.event_type,
                    r.subject,
                    r.status,
                    r.attempts,
                    _when(r.created_at),
                    _when(r.delivered_at),
                    r.last_error or "-",
                )
                for r in rows
            ],
        )

    @admin.action(description="Enable again", permissions=["operate"])
    def enable_again(self, request: HttpRequest, queryset: QuerySet) -> None:
        def enable(endpoint: WebhookEndpoint) -> str | None:
            reason = endpoint.disabled_reason
            if not webhook_endpoints.enable_webhook_endpoint(endpoint.pk, owner=endpoint.owner):
                self.message_user(request, f"{endpoint}: enabled already.", messages.INFO)
                return None
            return f"Enabled again (it was disabled: {reason or 'no reason recorded'})."

        self.run_each(request, queryset, enable, done="Enabled again")

    @admin.action(description="Send a ping", permissions=["operate"])
    def send_ping(self, request: HttpRequest, queryset: QuerySet) -> None:
        def ping(endpoint: WebhookEndpoint) -> str:
            event_id = webhook_endpoints.ping_webhook_endpoint(endpoint.pk, owner=endpoint.owner)
            return f"Sent a ping (event {event_id})."

        self.run_each(request, queryset, ping, done="Ping queued")


# --- API clients of the built-in issuer -----------------------------------------------------------


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    """Clients of the built-in issuer, through backend/issuer/clients.py. A secret is shown once,
    on the page that answers its creation or rotation (never redirected through a message,
    which would store it in a cookie or the session), and is stored only hashed."""

    form = ApiClientForm
    list_display = ("name", "client_id", "allowed_scopes", "created", "updated")
    search_fields = ("name", "=client_id")
    actions = ("rotate_secret", "revoke")
    readonly_fields = ("client_id", "allowed_scopes", "created", "updated")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        registered = ClientScopes.objects.filter(application=OuterRef("pk")).values("scopes")
        return super().get_queryset(request).annotate(registered_scopes=Subquery(registered))

    def get_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        if obj is None:
            return ("name", "scopes")
        return ("name", "client_id", "allowed_scopes", "created", "updated")

    @admin.display(description="scopes")
    def allowed_scopes(self, client: ApiClient) -> str:
        return getattr(client, "registered_scopes", None) or "-"

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False  # read-only as a form: rotate and revoke are the actions

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False  # "Revoke", which goes through backend/issuer/clients.py

    def has_add_permission(self, request: HttpRequest) -> bool:
        # With OIDC_ISSUER set the built-in issuer is off: a client of it could get no token.
        return not settings.OIDC_ISSUER and super().has_add_permission(request)

    def has_rotate_permission(self, request: HttpRequest) -> bool:
        return not settings.OIDC_ISSUER and _has_perm(request, self, "change")

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return _has_perm(request, self, "delete")

    def save_model(
        self, request: HttpRequest, obj: ApiClient, form: ModelForm, change: bool
    ) -> None:
        client_id, secret = clients.create_client(
            name=form.cleaned_data["name"], scopes=form.cleaned_data["scopes"]
        )
        created = ApiClient.objects.get(client_id=client_id)
        obj.pk, obj.client_id, obj.created, obj.updated = (
            created.pk,
            client_id,
            created.created,
            created.updated,
        )
        obj._state.adding = False
        request._backoffice_secrets = [(created, secret)]  # for response_add, this request only

    def response_add(
        self, request: HttpRequest, obj: ApiClient, post_url_continue: str | None = None
    ) -> HttpResponse:
        return self._secrets_page(request, request._backoffice_secrets, "created")

    def _secrets_page(
        self, request: HttpRequest, secrets: list[tuple[ApiClient, str]], what: str
    ) -> HttpResponse:
        response = TemplateResponse(
            request,
            "admin/backoffice/apiclient/secrets.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Client secret {what}",
                "opts": self.opts,
                "secrets": secrets,
                "what": what,
                "token_url": f"{settings.DUKA_PUBLIC_URL}/o/token/",
            },
        )
        add_never_cache_headers(response)  # no copy of the secret in any cache
        return response

    def _confirm(
        self, request: HttpRequest, queryset: QuerySet, *, action: str, question: str
    ) -> HttpResponse:
        return TemplateResponse(
            request,
            "admin/backoffice/confirm_action.html",
            {
                **self.admin_site.each_context(request),
                "title": "Are you sure?",
                "opts": self.opts,
                "objects": list(queryset),
                "action": action,
                "question": question,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            },
        )

    @admin.action(description="Rotate the secret", permissions=["rotate"])
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        if request.POST.get("confirm") != "yes":
            return self._confirm(
                request,
                queryset,
                action="rotate_secret",
                question="Each client gets a new secret, shown once on the next page; its "
                "current secret stops working at once.",
            )
        secrets = []
        for client in queryset:
            try:
                secret = clients.rotate_secret(client.client_id)
            except clients.UnknownClient as exc:
                self.message_user(request, f"{client}: {exc}", messages.ERROR)
                continue
            self.log_change(request, client, "Rotated the secret.")
            secrets.append((client, secret))
        return self._secrets_page(request, secrets, "rotated") if secrets else None

    @admin.action(description="Revoke", permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        if request.POST.get("confirm") != "yes":
            return self._confirm(
                request,
                queryset,
                action="revoke",
                question="Each client is deleted: it can obtain no more tokens (tokens already "
                "issued stay valid until they expire, at most 15 minutes).",
            )
        revoked = 0
        for client in queryset:
            try:
                clients.revoke_client(client.client_id)
            except clients.UnknownClient as exc:
                self.message_user(request, f"{client}: {exc}", messages.ERROR)
                continue
            self.log_deletions(request, [client])
            revoked += 1
        if revoked:
            self.message_user(request, f"Revoked {revoked} client(s).", messages.SUCCESS)
        return None


# --- Audit log ------------------------------------------------------------------------------------


@admin.register(AuditEntry)
class AuditLogAdmin(admin.ModelAdmin):
    """Every change made in the back-office, read-only (entries are never edited or deleted)."""

    list_display = ("action_time", "user", "content_type", "object_link", "action_flag", "change")
    list_filter = (
        "action_flag",
        ("content_type", admin.RelatedOnlyFieldListFilter),  # the screens that have entries
        ("action_time", admin.DateFieldListFilter),
    )
    search_fields = ("object_repr", "change_message", "user__username")
    list_select_related = ("user", "content_type")
    date_hierarchy = "action_time"
    fields = (
        "action_time",
        "user",
        "content_type",
        "object_id",
        "object_repr",
        "action_flag",
        "change",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    @admin.display(description="object")
    def object_link(self, entry: AuditEntry) -> str:
        if entry.action_flag != DELETION:  # a deleted object has no page
            url = entry.get_admin_url()
            if url:
                return format_html('<a href="{}">{}</a>', url, entry.object_repr)
        return entry.object_repr

    @admin.display(description="change")
    def change(self, entry: AuditEntry) -> str:
        return entry.get_change_message()

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).order_by(F("action_time").desc(), "-id")
