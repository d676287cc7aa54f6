import time, pytest
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
from tests.e2e.test_play import pages  # noqa

def test_debug(pages, daphne, session):
    gm = pages["gm"]
    gm.goto(f"/sessions/{session.pk}/play/")
    gm.wait_for_function("document.getElementById('conn').textContent == 'live'")
    gm.evaluate("""() => { window.D = []; 
      ['online','offline'].forEach(n => window.addEventListener(n, () => D.push(n + ' ' + navigator.onLine)));
      ['htmx:wsClose','htmx:wsOpen','htmx:wsConnecting','htmx:wsError'].forEach(n => document.body.addEventListener(n, e => D.push(n + ' ' + (e.detail.event ? e.detail.event.code : ''))));
    }""")
    gm.context.set_offline(True)
    gm.wait_for_timeout(1000)
    print(gm.evaluate("D"), gm.inner_text("#conn"))
    gm.context.set_offline(False)
    gm.wait_for_timeout(3000)
    print(gm.evaluate("D"), gm.inner_text("#conn"))
