// The Projects navigation: choosing one narrows the list to it and starts new chats in it (with its
// model and system prompt); "New project" makes one through the API.
import { api } from "./api.js";
import { toolsOf } from "./tools.js";

export class Projects {
  // chat: { selectProject(project or null), alert(text) }
  constructor(els, url, projects, chat) {
    Object.assign(this, { els, url, chat });
    this.projects = new Map(projects.map((p) => [String(p.id), p]));
    this.selected = null;
    els.list.addEventListener("click", (e) => {
      const button = e.target.closest(".project-filter");
      if (button) this.select(button.dataset.project);
    });
    els.newButton.addEventListener("click", () => this.ask());
    els.dialog.addEventListener("close", () => this.create());
  }

  get current() { return this.selected ? this.projects.get(this.selected) || null : null; }

  select(id) {
    this.selected = id && this.projects.has(String(id)) ? String(id) : null;
    this.els.list.querySelectorAll(".project-filter").forEach((b) => {
      b.setAttribute("aria-pressed", String((b.dataset.project || null) === this.selected));
    });
    this.chat.selectProject(this.current);
  }

  ask(error = "") {
    this.els.error.textContent = error;
    this.els.dialog.returnValue = "";
    this.els.dialog.showModal();
    this.els.name.focus();
  }

  async create() {
    const { dialog, name, model, prompt, tools } = this.els;
    if (dialog.returnValue !== "save" || !name.value.trim()) return;
    const boxes = [...tools.querySelectorAll("input[type=checkbox]")];
    const chosen = toolsOf(new Set(boxes.filter((box) => box.checked).map((box) => box.value)));
    try {
      const project = await api(
        "POST", this.url, { name: name.value, model: model.value, system_prompt: prompt.value, tools: chosen },
      );
      name.value = "";
      prompt.value = "";
      boxes.forEach((box) => { box.checked = false; });
      this.add(project);
      this.select(project.id);
    } catch (e) {
      this.ask(e.message); // the typed values stay in the form
    }
  }

  add(project) {
    this.projects.set(String(project.id), project);
    const li = document.createElement("li");
    li.dataset.projectId = project.id;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "project-filter";
    button.dataset.project = project.id;
    button.setAttribute("aria-pressed", "false");
    button.textContent = project.name;
    li.appendChild(button);
    this.els.list.appendChild(li);
    const option = document.createElement("option");
    option.value = project.id;
    option.textContent = project.name;
    this.els.move.appendChild(option);
  }
}
