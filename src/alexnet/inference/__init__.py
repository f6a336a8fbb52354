"""What uses a trained net: any weights as a checkpoint dict (`weights`), classifying images
(`predict`) and writing the net for other runtimes (`export`). It reads run folders and weight
files; training (alexnet.engine) never imports it."""
