"""Wine cultivars: a forest and a nearest-neighbour model vote.

Usage: python wine_vote.py [TEST_SIZE]
"""
import sys

from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier, VotingClassifier
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

test_size = float(sys.argv[1]) if len(sys.argv) > 1 else 0.3

X, y = load_wine(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=test_size, random_state=1)

forest = RandomForestClassifier()
knn = KNeighborsClassifier(n_neighbors=1)
model = VotingClassifier([("forest", forest), ("knn", knn)], voting="soft")
model.fit(X_train, y_train)

accuracy = model.score(X_test, y_test)
print(f"accuracy on {len(y_test)} wines: {accuracy:.3f}")
open("accuracy.txt", "w").write(f"{accuracy * 100:.1f}")
