// The ranking widget: answers in the visitor's order, best first. Reorder by dragging, by the
// arrow buttons (touch screens have no drag and drop and no number keys), or by typing the
// answers' numbers from best to worst; "tie" joins an answer to the one above it.

export class Ranking {
  constructor(list, onChange) {
    this.list = list;
    this.onChange = onChange || (() => {});
    this.items = [];
    this.typed = [];
  }

  show(prompt, responses) {
    this.prompt = prompt;
    this.responses = responses;
    this.order = responses.map((_, i) => i);
    this.tied = responses.map(() => false);
    this.typed = [];
    this.render();
  }

  render() {
    this.list.replaceChildren(...this.order.map((idx, pos) => {
      const li = document.createElement("li");
      li.className = "answer";
      li.draggable = true;
      li.dataset.idx = String(idx);
      const num = document.createElement("span");
      num.className = "num";
      num.textContent = String(idx + 1);
      const text = document.createElement("span");
      text.className = "text";
      text.textContent = this.responses[idx]; // model text is text, never HTML
      const tie = document.createElement("label");
      tie.className = "tie";
      const box = document.createElement("input");
      box.type = "checkbox";
      box.checked = this.tied[pos];
      box.disabled = pos === 0;
      box.addEventListener("change", () => { this.tied[pos] = box.checked; this.onChange(); });
      tie.append(box, " tie with above");
      const moves = document.createElement("span");
      moves.className = "moves";
      for (const [label, to, sign] of [["Move up", pos - 1, "▲"], ["Move down", pos + 1, "▼"]]) {
        const b = Object.assign(document.createElement("button"), { type: "button", className: "move secondary", textContent: sign, title: label });
        b.setAttribute("aria-label", `${label}: answer ${idx + 1}`);
        b.disabled = to < 0 || to >= this.order.length;
        b.addEventListener("click", () => this.move(pos, to));
        moves.append(b);
      }
      const side = document.createElement("span");
      side.className = "side";
      side.append(moves, tie);
      li.append(num, text, side);
      li.addEventListener("dragstart", (e) => { e.dataTransfer.setData("text/plain", String(pos)); li.classList.add("dragging"); });
      li.addEventListener("dragend", () => li.classList.remove("dragging"));
      li.addEventListener("dragover", (e) => e.preventDefault());
      li.addEventListener("drop", (e) => {
        e.preventDefault();
        const from = Number(e.dataTransfer.getData("text/plain"));
        this.move(from, pos);
      });
      return li;
    }));
    this.onChange();
  }

  move(from, to) {
    if (from === to || !(from >= 0 && from < this.order.length)) return;
    const [x] = this.order.splice(from, 1);
    this.order.splice(to, 0, x);
    this.render();
  }

  // Typing answer numbers: each one goes to the next place from the top.
  key(e) {
    if (!this.responses) return false;
    if (e.key >= "1" && e.key <= "9") {
      const idx = Number(e.key) - 1;
      if (idx >= this.responses.length || this.typed.includes(idx)) return false;
      this.typed.push(idx);
      const rest = this.order.filter((i) => !this.typed.includes(i));
      this.order = [...this.typed, ...rest];
      this.render();
      return true;
    }
    if (e.key === "Backspace") {
      this.typed = [];
      return true;
    }
    return false;
  }

  // ranks[i] for answer i: 0 is best; tied answers share a rank.
  ranks() {
    const ranks = new Array(this.responses.length).fill(0);
    let r = 0;
    this.order.forEach((idx, pos) => {
      if (pos > 0 && !this.tied[pos]) r += 1;
      ranks[idx] = r;
    });
    return ranks;
  }

  allTied() {
    return this.ranks().every((r) => r === 0);
  }
}
