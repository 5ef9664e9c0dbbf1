"""Server-rendered HTML for the shop: plain strings, every value escaped, no JavaScript
except on the pages that open a provider's own payment SDK (Naver Pay, Toss Payments,
PortOne start their checkout in the browser)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from zoneinfo import ZoneInfo

from payfallback import CheckoutSession, Method, Money, Payment, Refund, RefundState

from .settings import METHOD_LABELS, PROVIDER_LABELS
from .store import CATALOG, ShopOrder, WebhookEvent

__all__ = [
    "checkout_page",
    "demo_page",
    "fallback_page",
    "home_page",
    "message_page",
    "order_page",
    "sdk_page",
]

_SEOUL = ZoneInfo("Asia/Seoul")

_STYLE = """
body { font-family: "DejaVu Sans", "Liberation Sans", sans-serif; margin: 0; background: #f6f4ef;
       color: #222; }
header { background: #3b2f2a; color: #fff; padding: 14px 28px; font-size: 20px; }
header a { color: #fff; text-decoration: none; }
main { max-width: 560px; margin: 28px auto; background: #fff; padding: 24px 28px;
       border-radius: 10px; box-shadow: 0 1px 4px rgba(0,0,0,.12); }
h1 { font-size: 22px; margin-top: 0; }
.summary { display: flex; justify-content: space-between; padding: 12px 0;
           border-bottom: 1px solid #eee; margin-bottom: 18px; }
.amount { font-weight: bold; }
.notice { background: #fff4d6; border: 1px solid #e8c25a; padding: 12px 14px; border-radius: 6px;
          margin-bottom: 18px; }
.error { background: #fde7e7; border: 1px solid #e08a8a; padding: 12px 14px; border-radius: 6px;
         margin-bottom: 18px; }
.ok { background: #e5f5e7; border: 1px solid #7fbf88; padding: 12px 14px; border-radius: 6px;
      margin-bottom: 18px; }
.methods button, .button { display: block; width: 100%; font-size: 17px; padding: 13px;
           margin: 0 0 10px; border-radius: 8px; border: 1px solid #bbb; background: #fafafa;
           cursor: pointer; text-align: left; color: #222; text-decoration: none;
           box-sizing: border-box; font-family: inherit; }
button.kakaopay { background: #fee500; border-color: #e5cf00; }
button.naverpay { background: #03c75a; border-color: #02a94c; color: #fff; }
button.tosspay { background: #0064ff; border-color: #0050cc; color: #fff; }
table { width: 100%; border-collapse: collapse; margin-bottom: 16px; }
td { padding: 6px 0; vertical-align: top; }
td:first-child { color: #666; width: 40%; }
small { color: #666; }
"""


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<style>{_STYLE}</style></head>\n<body><header><a href='/'>Mokdong Coffee</a></header>"
        f"<main>\n{body}\n</main></body></html>\n"
    )


def _summary(order: ShopOrder) -> str:
    money = Money(amount=order.amount, currency=order.currency)
    return (
        f"<div class='summary'><span>{escape(order.name)}<br><small>Order "
        f"<span id='order-id'>{escape(order.order_id)}</span></small></span>"
        f"<span class='amount'>{escape(str(money))}</span></div>"
    )


def _label(method: Method | str) -> str:
    try:
        return METHOD_LABELS[Method(method)]
    except ValueError:
        return str(method)


def _provider(name: str) -> str:
    return PROVIDER_LABELS.get(name, name)


def home_page() -> str:
    items = "\n".join(
        f"<form method='post' action='/orders'><input type='hidden' name='sku' "
        f"value='{escape(p.sku)}'><button class='button' id='buy-{escape(p.sku)}'>"
        f"{escape(p.name)} — {p.price:,} KRW</button></form>"
        for p in CATALOG.values()
    )
    return _page("Mokdong Coffee", f"<h1>Order beans</h1>\n<div class='methods'>{items}</div>")


def checkout_page(
    order: ShopOrder,
    offered: Sequence[Method],
    *,
    usual: Method,
    usual_down: bool,
    message: str | None = None,
) -> str:
    """The ways to pay that are healthy now; a notice when the usual wallet is not one."""
    parts = ["<h1>Checkout</h1>", _summary(order)]
    if message:
        parts.append(f"<div class='error' id='message'>{escape(message)}</div>")
    if usual_down:
        others = [_label(m) for m in offered]
        instead = f" Please pay with {_join(others)}." if others else ""
        parts.append(
            "<div class='notice' id='fallback-notice'>"
            f"<strong>{escape(_label(usual))} is not available right now.</strong> "
            f"It stopped answering a moment ago, so we are not offering it.{escape(instead)}"
            "</div>"
        )
    if offered:
        buttons = "\n".join(
            f"<button name='method' value='{escape(m.value)}' id='pay-{escape(m.value)}' "
            f"class='{escape(m.value)}'>Pay with {escape(_label(m))}</button>"
            for m in offered
        )
        parts.append(
            f"<form method='post' action='/orders/{escape(order.order_id)}/pay' "
            f"class='methods'>\n{buttons}\n</form>"
        )
    else:
        parts.append(
            "<div class='error' id='nothing-available'>No way to pay is available right now. "
            "Please try again in a minute; your order is kept.</div>"
        )
    return _page("Checkout", "\n".join(parts))


def _join(words: Sequence[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]


def fallback_page(order: ShopOrder, session: CheckoutSession, asked: Method, ref: str) -> str:
    """The asked-for wallet did not answer and the Router opened another: let the customer
    choose, rather than sending them to a wallet they did not pick."""
    landed = _label(session.method)
    body = (
        "<h1>Checkout</h1>" + _summary(order) + "<div class='notice' id='switched'>"
        f"<strong>{escape(_label(asked))} did not answer.</strong> Nothing was charged. "
        f"We have prepared {escape(landed)} instead.</div>"
        f"<p><a class='button' id='continue' href='/pay/{escape(ref)}'>Continue with "
        f"{escape(landed)}</a></p>"
        f"<p><a class='button' id='back' href='/orders/{escape(order.order_id)}/checkout'>"
        "Choose another way to pay</a></p>"
    )
    return _page("Checkout", body)


def order_page(
    order: ShopOrder,
    payment: Payment | None,
    refunds: Iterable[Refund],
    events: Iterable[WebhookEvent],
    *,
    confirming: bool = False,
    message: str | None = None,
) -> str:
    """The receipt: what was paid, where, what was refunded, and what providers reported."""
    parts = [f"<h1>Order {escape(order.order_id)}</h1>", _summary(order)]
    if message:
        parts.append(f"<div class='notice' id='message'>{escape(message)}</div>")
    if payment is None and confirming:
        parts.append(
            "<p id='status'>Your payment is being confirmed with the provider. Please do not "
            "pay again; this page shows the result once it is known.</p>"
        )
    elif payment is None:
        parts.append(
            "<p id='status'>Not paid yet.</p>"
            f"<p><a class='button' href='/orders/{escape(order.order_id)}/checkout'>"
            "Pay now</a></p>"
        )
    else:
        status = {
            "paid": "Paid",
            "partially_refunded": "Partly refunded",
            "refunded": "Refunded",
        }[payment.status.value]
        parts.append(f"<div class='ok' id='status'>{status}</div>")
        paid_with, via = _label(payment.method), _provider(payment.provider)
        rows = [
            ("Paid with", paid_with if via == paid_with else f"{paid_with} via {via}"),
            ("Amount", str(payment.amount)),
            ("Refunded", str(payment.refunded)),
            *(
                [("Approval no", payment.receipt.approval_number)]
                if payment.receipt and payment.receipt.approval_number
                else []
            ),
            ("Transaction", payment.provider_txn_id),
            ("Payment id", payment.payment_id),
            ("Approved at", f"{payment.approved_at.astimezone(_SEOUL):%Y-%m-%d %H:%M:%S} KST"),
        ]
        if payment.receipt and payment.receipt.receipt_url:
            rows.append(("Receipt URL", payment.receipt.receipt_url))
        parts.append(
            "<table id='receipt'>"
            + "".join(
                f"<tr><td>{escape(k)}</td><td id='receipt-{escape(k.lower().replace(' ', '-'))}'>"
                f"{escape(v)}</td></tr>"
                for k, v in rows
            )
            + "</table>"
        )
        if payment.refundable.amount > 0:
            parts.append(
                f"<form method='post' action='/orders/{escape(order.order_id)}/refund'>"
                # One id per rendered form: a double click sends it twice, refunds once.
                f"<input type='hidden' name='request_id' value='{uuid.uuid4().hex}'>"
                f"<button class='button' id='refund'>Refund {escape(str(payment.refundable))}"
                "</button></form>"
            )
    refund_rows = [
        f"<li>{escape(str(r.amount))}: "
        + (
            "done"
            if r.state is RefundState.SUCCEEDED
            else "pending — the provider did not confirm it yet; it is retried until done"
            if r.state is RefundState.OWED
            else f"failed ({escape(r.error_code or 'see the journal')})"
        )
        + "</li>"
        for r in refunds
    ]
    if refund_rows:
        parts.append("<h2>Refunds</h2><ul id='refunds'>" + "".join(refund_rows) + "</ul>")
    event_rows = [
        f"<li>{escape(_provider(e.provider))} {escape(e.event_type)}: {escape(e.note)}</li>"
        for e in events
    ]
    if event_rows:
        parts.append("<h2>Provider reports</h2><ul id='reports'>" + "".join(event_rows) + "</ul>")
    return _page(f"Order {order.order_id}", "\n".join(parts))


def message_page(title: str, text: str, *, back: str = "/", back_label: str = "Back") -> str:
    return _page(
        title,
        f"<h1>{escape(title)}</h1><div class='error' id='message'>{escape(text)}</div>"
        f"<p><a class='button' href='{escape(back)}'>{escape(back_label)}</a></p>",
    )


def _script_json(value: Mapping[str, str]) -> str:
    # JSON inside <script>: escape what could end the element or start markup.
    return (
        json.dumps(dict(value), ensure_ascii=False)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )


# Each launcher hands the adapter's client_params to the provider's browser SDK, which
# opens the payment window and then sends the customer to our return URL. They follow the
# SDK references named in examples/README.md; the tests check what is handed over, not the
# providers' own scripts.
_TOSS = """
<script src="https://js.tosspayments.com/v2/standard"></script>
<script>
const p = __PARAMS__;
const request = {
  method: p.method,
  amount: { currency: p.currency, value: Number(p.amount) },
  orderId: p.orderId, orderName: p.orderName, successUrl: p.successUrl, failUrl: p.failUrl,
};
if (p.flowMode) request.card = { flowMode: p.flowMode, easyPay: p.easyPay };
if (p.taxFreeAmount) request.taxFreeAmount = Number(p.taxFreeAmount);
TossPayments(p.clientKey).payment({ customerKey: TossPayments.ANONYMOUS })
  .requestPayment(request)
  .catch((e) => {
    const q = new URLSearchParams({ code: e.code || "SDK_ERROR", message: e.message || "" });
    location.href = p.failUrl + (p.failUrl.includes("?") ? "&" : "?") + q;
  });
</script>"""

_NAVER = """
<script src="__SDK_URL__"></script>
<script>
const p = __PARAMS__;
const pay = Naver.Pay.create({ mode: p.mode, clientId: p.clientId, chainId: p.chainId });
const request = {
  merchantPayKey: p.merchantPayKey, productName: p.productName,
  productCount: Number(p.productCount), totalPayAmount: Number(p.totalPayAmount),
  taxScopeAmount: Number(p.taxScopeAmount), taxExScopeAmount: Number(p.taxExScopeAmount),
  returnUrl: p.returnUrl, productItems: JSON.parse(p.productItems),
};
if (p.merchantUserKey) request.merchantUserKey = p.merchantUserKey;
pay.open(request);
</script>"""

_PORTONE = """
<script src="https://cdn.portone.io/v2/browser-sdk.js"></script>
<script>
const p = __PARAMS__;
const request = {
  storeId: p.storeId, channelKey: p.channelKey, paymentId: p.paymentId,
  orderName: p.orderName, totalAmount: Number(p.totalAmount), currency: p.currency,
  payMethod: p.payMethod, redirectUrl: p.redirectUrl,
};
if (p.taxFreeAmount) request.taxFreeAmount = Number(p.taxFreeAmount);
if (p.customerId) request.customer = { customerId: p.customerId };
if (p.easyPayProvider) request.easyPay = { easyPayProvider: p.easyPayProvider };
PortOne.requestPayment(request).then((r) => {
  const q = new URLSearchParams({ paymentId: p.paymentId });
  if (r && r.code) { q.set("code", r.code); q.set("message", r.message || ""); }
  location.href = p.redirectUrl + (p.redirectUrl.includes("?") ? "&" : "?") + q;
});
</script>"""

#: Provider name → the launcher that opens its SDK.
SDK_LAUNCHERS: dict[str, str] = {"tosspayments": _TOSS, "naverpay": _NAVER, "portone": _PORTONE}


def sdk_page(order: ShopOrder, session: CheckoutSession) -> str | None:
    """A page that opens the provider's payment window in the browser; None if the
    example has no launcher for this provider."""
    launcher = SDK_LAUNCHERS.get(session.provider)
    if launcher is None:
        return None
    params = dict(session.client_params)
    # The SDK URL first: the JSON put in next may contain any text, placeholders included.
    script = launcher.replace("__SDK_URL__", escape(params.get("sdkUrl", ""))).replace(
        "__PARAMS__", _script_json(params)
    )
    body = (
        "<h1>Checkout</h1>"
        + _summary(order)
        + f"<p id='opening'>Opening {escape(_provider(session.provider))}…</p>"
        + script
    )
    return _page("Checkout", body)


def demo_page(down: Mapping[str, bool]) -> str:
    rows = "\n".join(
        f"<form method='post' action='/demo/{escape(name)}/{'up' if is_down else 'down'}'>"
        f"<button class='button' id='toggle-{escape(name)}'>{escape(_provider(name))} is "
        f"{'DOWN — bring it back' if is_down else 'up — take it down'}</button></form>"
        for name, is_down in down.items()
    )
    body = (
        "<h1>Demo: the fake providers</h1>"
        "<p>A provider taken down resets every connection, like a crashed service. After a "
        "couple of failed checkouts its breaker opens and the checkout page stops offering "
        "it; <a href='/health'>/health</a> shows the breakers.</p>"
        f"<div class='methods'>{rows}</div><p><a href='/'>Back to the shop</a></p>"
    )
    return _page("Demo", body)
