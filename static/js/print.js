// Buttons marked data-print open the browser's print dialog (the case file).
document.querySelectorAll("[data-print]").forEach((button) => {
  button.addEventListener("click", () => window.print());
});
