// Diwan's keyboard shortcuts (the pages work without this file): j/k next/previous post,
// r reply to it, n new post, Ctrl+Enter sends the form being written, ? the help page.
// Served from the app itself ('self' in the CSP); no inline script, no library.
(function () {
  "use strict";
  var current = -1;

  function posts() { return Array.prototype.slice.call(document.querySelectorAll("main article.post")); }

  function typing(el) {
    if (!el) { return false; }
    var tag = el.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable;
  }

  function select(step) {
    var list = posts();
    if (!list.length) { return; }
    var active = list.indexOf(document.activeElement);
    if (active >= 0) { current = active; }
    current = Math.max(0, Math.min(list.length - 1, current + step));
    list.forEach(function (p) { p.classList.remove("current"); });
    var post = list[current];
    post.classList.add("current");
    post.setAttribute("tabindex", "-1");
    post.focus();
    post.scrollIntoView({ block: "nearest" });
  }

  function reply() {
    var list = posts();
    var post = list[current] || list[0];
    var link = post && post.querySelector("a[data-reply]");
    if (link) { window.location.href = link.href; return; }
    var box = document.querySelector("form[data-compose] textarea");
    if (box) { box.focus(); }
  }

  function go(selector) {
    var link = document.querySelector(selector);
    if (link) { window.location.href = link.href; }
  }

  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      var form = event.target.closest && event.target.closest("form[data-compose]");
      if (form) {
        event.preventDefault();
        var send = form.querySelector("[data-send]");
        if (form.requestSubmit) { form.requestSubmit(send); } else { send.click(); }
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) { return; }
    switch (event.key) {
      case "j": select(1); break;
      case "k": select(-1); break;
      case "r": reply(); break;
      case "n": go("a[data-key-new]"); break;
      case "?": go("a[data-key-help]"); break;
      default: return;
    }
    event.preventDefault();
  });
}());
