/* The gallery: everything works from the keyboard. Arrows move the selection, Enter opens it, u
   toggles "Unrated only", n / p change page, ? lists the shortcuts. Helpers from sinkin.js. */
(function () {
  "use strict";
  const {isTyping} = window.SK;
  const dialogOpen = () => document.querySelector("dialog[open]");

  function help() {
    const dlg = document.getElementById("sk-help");
    if (dlg && !dlg.open) dlg.showModal();
  }

  /* ---------------------------------------------------------------- gallery */
  function gallery() {
    const form = document.getElementById("sk-filters");
    form.querySelectorAll("select").forEach((select) => select.addEventListener("change", () => {
      const params = new URLSearchParams(new FormData(form));
      for (const [k, v] of [...params]) if (!v || (k === "sort" && v === "newest")) params.delete(k);
      location.search = params.toString();
    }));
    const tiles = [...document.querySelectorAll(".sk-tile")];
    let selected = 0;
    const hash = location.hash.match(/^#img-(\d+)$/);
    if (hash) selected = Math.max(0, tiles.findIndex((t) => t.dataset.id === hash[1]));
    function select(i) {
      if (!tiles.length) return;
      selected = Math.max(0, Math.min(tiles.length - 1, i));
      tiles.forEach((t, j) => t.classList.toggle("sk-selected", j === selected));
      tiles[selected].focus({preventScroll: false});
    }
    if (tiles.length) select(selected);
    const columns = () => {
      if (tiles.length < 2) return 1;
      const top = tiles[0].getBoundingClientRect().top;
      const n = tiles.findIndex((t) => t.getBoundingClientRect().top !== top);
      return n === -1 ? tiles.length : n;
    };
    document.addEventListener("keydown", (event) => {
      if (isTyping(event) || dialogOpen() || event.ctrlKey || event.metaKey || event.altKey) return;
      const key = event.key;
      if (key === "ArrowRight") select(selected + 1);
      else if (key === "ArrowLeft") select(selected - 1);
      else if (key === "ArrowDown") select(selected + columns());
      else if (key === "ArrowUp") select(selected - columns());
      else if (key === "Enter" && tiles.length) location.href = tiles[selected].href;
      else if (key === "u") document.getElementById("sk-unrated").click();
      else if (key === "n" && document.getElementById("sk-next")) document.getElementById("sk-next").click();
      else if (key === "p" && document.getElementById("sk-prev")) document.getElementById("sk-prev").click();
      else if (key === "?") help();
      else return;
      event.preventDefault();
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const page = document.querySelector("[data-page]");
    if (!page) return;
    if (page.dataset.page === "gallery") gallery();
  });
})();
