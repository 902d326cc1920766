# Handwritten digits with a small Keras CNN.
# Settings are written in the code; the accuracy goes to accuracy.txt as a percentage.
import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from tensorflow import keras
from tensorflow.keras import layers

digits = load_digits()
frame = pd.DataFrame(digits.data)
frame["label"] = digits.target
print(frame["label"].value_counts().sort_index().to_string())

x = frame.drop(columns="label").to_numpy().reshape(-1, 8, 8, 1) / 16.0
y = frame["label"].to_numpy()
x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=42)

model = keras.Sequential([
    keras.Input(shape=(8, 8, 1)),
    layers.Conv2D(8, (3, 3), activation="relu"),
    layers.MaxPooling2D((2, 2)),
    layers.Flatten(),
    layers.Dense(16, activation="relu"),
    layers.Dense(10, activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=3, batch_size=32, validation_split=0.1, verbose=2)

loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
print("test accuracy:", accuracy)
with open("accuracy.txt", "w") as f:
    f.write(str(np.round(accuracy * 100, 2)))
